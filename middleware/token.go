package middleware

import (
	"context"
	"net/http"
	"strings"
)

// TokenSources switches token sources off; all are on by default except
// the cookie, which is read only when Cookie names one. The sources are
// tried in the order of the wire protocol and the first one present wins.
type TokenSources struct {
	// NoHeader ignores "Authorization: Bearer <token>".
	NoHeader bool
	// NoSubprotocol ignores the "bearer.<token>" entry of
	// Sec-WebSocket-Protocol (how browsers send it).
	NoSubprotocol bool
	// NoQuery ignores the access_token query parameter.
	NoQuery bool
	// Cookie names the cookie that holds the token. Off by default.
	Cookie string
}

const (
	queryParam      = "access_token"
	bearerPrefix    = "bearer."
	authSchemeSpace = "bearer "
)

// extractToken returns the token of r and whether one was present. A
// present but malformed token returns ok true and an empty token, so that it
// is refused rather than passed over for a weaker source.
func extractToken(r *http.Request, src TokenSources) (token string, present bool) {
	if !src.NoHeader {
		if h := r.Header.Get("Authorization"); h != "" {
			if len(h) > len(authSchemeSpace) && strings.EqualFold(h[:len(authSchemeSpace)], authSchemeSpace) {
				return wellFormed(strings.TrimSpace(h[len(authSchemeSpace):])), true
			}
			return "", true
		}
	}
	if !src.NoSubprotocol {
		for _, line := range r.Header.Values("Sec-WebSocket-Protocol") {
			for _, p := range strings.Split(line, ",") {
				p = strings.TrimSpace(p)
				if len(p) > len(bearerPrefix) && strings.EqualFold(p[:len(bearerPrefix)], bearerPrefix) {
					return wellFormed(p[len(bearerPrefix):]), true
				}
			}
		}
	}
	if !src.NoQuery {
		if t, ok := r.Context().Value(hiddenTokenKey{}).(string); ok {
			return wellFormed(t), true
		}
		if q := r.URL.Query(); q.Has(queryParam) {
			return wellFormed(q.Get(queryParam)), true
		}
	}
	if src.Cookie != "" {
		if c, err := r.Cookie(src.Cookie); err == nil {
			return wellFormed(c.Value), true
		}
	}
	return "", false
}

// wellFormed returns t if it is a plausible bearer token (RFC 6750's
// b64token: letters, digits, - . _ ~ + / and trailing =), else "".
func wellFormed(t string) string {
	if len(t) == 0 || len(t) > 8192 {
		return ""
	}
	i := 0
	for ; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			break
		}
	}
	if i == 0 {
		return ""
	}
	for ; i < len(t); i++ {
		if t[i] != '=' {
			return ""
		}
	}
	return t
}

type hiddenTokenKey struct{}

// HideQueryToken wraps an http.Handler (a *gin.Engine, say) so that an
// access_token query parameter is moved out of the URL into the request's
// context before anything logs the URL. Gin's Logger reads the raw query
// before the handlers run, so a middleware mounted after it is too late:
//
//	r := gin.Default()
//	r.GET("/ws", middleware.New(h, opts))
//	srv := &http.Server{Handler: middleware.HideQueryToken(r)}
//
// The ginws middleware still finds the token. Other handlers no longer see
// it in the query.
func HideQueryToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.RawQuery, queryParam) {
			q := r.URL.Query()
			if q.Has(queryParam) {
				token := q.Get(queryParam)
				q.Del(queryParam)
				r2 := r.WithContext(context.WithValue(r.Context(), hiddenTokenKey{}, token))
				u := *r.URL
				u.RawQuery = q.Encode()
				r2.URL = &u
				r2.RequestURI = u.RequestURI()
				r = r2
			}
		}
		next.ServeHTTP(w, r)
	})
}
