package middleware

import (
	"net/url"
	"strings"
)

// originPolicy decides whether an Origin header may connect.
type originPolicy struct {
	insecure bool
	exact    map[string]bool // "scheme://host[:port]" or "host[:port]"
	suffixes []wildcard
}

type wildcard struct {
	scheme string // empty: any
	suffix string // ".example.com" or ".example.com:8443"
}

func newOriginPolicy(allowed []string, insecure bool) originPolicy {
	p := originPolicy{insecure: insecure, exact: make(map[string]bool)}
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(a), "/"))
		scheme, host, ok := strings.Cut(a, "://")
		if !ok {
			scheme, host = "", a
		}
		if host == "" || host == "*" || strings.Contains(host, "/") {
			panic("middleware: invalid allowed origin " + a + ` (want "https://host[:port]", "host" or "*.domain")`)
		}
		if rest, ok := strings.CutPrefix(host, "*."); ok {
			if rest == "" || strings.Contains(rest, "*") {
				panic("middleware: invalid allowed origin pattern " + a)
			}
			p.suffixes = append(p.suffixes, wildcard{scheme: scheme, suffix: "." + rest})
			continue
		}
		if strings.Contains(host, "*") {
			panic("middleware: a wildcard may only start an allowed origin: " + a)
		}
		p.exact[a] = true
	}
	return p
}

// allow reports whether origin may connect to requestHost. No Origin header
// (a non-browser client) passes, as in gorilla/websocket; "null" and
// unparsable origins never do.
func (p originPolicy) allow(origin, requestHost string) bool {
	if origin == "" || p.insecure {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Opaque != "" || u.User != nil || (u.Path != "" && u.Path != "/") {
		return false
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if scheme != "http" && scheme != "https" {
		return false
	}
	if len(p.exact) == 0 && len(p.suffixes) == 0 {
		return host == strings.ToLower(requestHost)
	}
	if p.exact[scheme+"://"+host] || p.exact[host] {
		return true
	}
	for _, w := range p.suffixes {
		if (w.scheme == "" || w.scheme == scheme) && strings.HasSuffix(host, w.suffix) && len(host) > len(w.suffix) {
			return true
		}
	}
	return false
}
