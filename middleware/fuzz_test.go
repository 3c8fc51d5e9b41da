package middleware

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func FuzzExtractToken(f *testing.F) {
	for _, s := range [][4]string{
		{"Bearer abc.def.ghi", "", "", ""},
		{"", "ginws.v1, bearer.abc.def", "", ""},
		{"", "", "tok%20en", ""},
		{"bearer ", "bearer.", "", "c"},
		{"Bearer a b", "ginws.v1,,bearer.x=y", "a&access_token=b", "=="},
		{"BEARER x==", "Bearer.x", "\x00", "\xff"},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, auth, proto, query, cookie string) {
		r := &http.Request{Header: http.Header{}, URL: &url.URL{RawQuery: "access_token=" + url.QueryEscape(query)}}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		if proto != "" {
			r.Header.Set("Sec-WebSocket-Protocol", proto)
		}
		r.Header.Set("Cookie", "t="+cookie)
		tok, present := extractToken(r, TokenSources{Cookie: "t"})
		if !present {
			t.Fatal("a query parameter was set, so a token source is present")
		}
		if tok != "" && wellFormed(tok) != tok {
			t.Fatalf("accepted malformed token %q", tok)
		}
		if strings.ContainsAny(tok, " ,\t\r\n\x00") {
			t.Fatalf("token %q holds a separator", tok)
		}
	})
}

func FuzzOrigin(f *testing.F) {
	for _, s := range []string{"https://app.example.com", "https://app.example.com.evil.io", "null", "https://a.example.org", "http://[::1]:80", "https://x@app.example.com", "https://app.example.com/path"} {
		f.Add(s)
	}
	p := newOriginPolicy([]string{"https://app.example.com", "*.example.org"}, false)
	f.Fuzz(func(t *testing.T, origin string) {
		if !p.allow(origin, "ws.example.com") || origin == "" {
			return
		}
		u, err := url.Parse(origin)
		if err != nil {
			t.Fatalf("allowed unparsable origin %q", origin)
		}
		host := strings.ToLower(u.Host)
		if host != "app.example.com" && !strings.HasSuffix(host, ".example.org") {
			t.Fatalf("allowed origin %q outside the list", origin)
		}
	})
}
