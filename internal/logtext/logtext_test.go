package logtext_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"

	"github.com/ginws/ginws/internal/logtext"
)

func TestClip(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", ""},
		{"short", "https://app.example.com", "https://app.example.com"},
		{"exactly the maximum", strings.Repeat("a", logtext.Max), strings.Repeat("a", logtext.Max)},
		{"one byte more", strings.Repeat("a", logtext.Max+1), strings.Repeat("a", logtext.Max) + "…(1 more bytes)"},
		{"a rune across the cut", "a" + strings.Repeat("é", 100), "a" + strings.Repeat("é", 63) + "…(74 more bytes)"},
		{"invalid UTF-8 kept short", "a\xffb", "a\uFFFDb"},
		{"invalid UTF-8 at the cut", strings.Repeat("a", logtext.Max-1) + "\xff\xff\xff", strings.Repeat("a", logtext.Max-1) + "\uFFFD…(2 more bytes)"},
	} {
		got := logtext.Clip(tc.in)
		assert.Equal(t, tc.want, got, tc.name)
		assert.True(t, utf8.ValidString(got), tc.name)
	}
	assert.Less(t, len(logtext.Clip(strings.Repeat("x", 60<<10))), logtext.Max+32)
}
