// Package logtext bounds the strings a client chooses (an Origin header, an
// error that quotes a token's key id) before they reach a log line, so that
// a request of a few kilobytes cannot write as much to the log each time.
package logtext

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Max is the number of bytes of a string that Clip keeps.
const Max = 128

// Clip returns s if it is at most Max bytes, else its first Max bytes or
// fewer (never half a rune) followed by "…(N more bytes)". Invalid UTF-8 in
// what is kept becomes U+FFFD, so the result is always valid UTF-8.
func Clip(s string) string {
	if len(s) <= Max {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	cut := Max
	// Back to the start of a rune; a run of stray continuation bytes is
	// not searched further, ToValidUTF8 replaces it.
	for i := 1; i < utf8.UTFMax && !utf8.RuneStart(s[cut]); i++ {
		cut--
	}
	return strings.ToValidUTF8(s[:cut], "\uFFFD") + "…(" + strconv.Itoa(len(s)-cut) + " more bytes)"
}
