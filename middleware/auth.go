package middleware

import (
	"errors"
	"fmt"

	"github.com/gin-gonic/gin"

	"github.com/ginws/ginws/hub"
)

// Authenticator turns the token of an upgrade request into a Principal.
// token is empty when the request carried none; an error refuses the
// connection with 401. Implementations must be safe for concurrent use and
// must not keep c past the call.
type Authenticator interface {
	Authenticate(c *gin.Context, token string) (hub.Principal, error)
}

// AuthFunc adapts a function to Authenticator.
type AuthFunc func(c *gin.Context, token string) (hub.Principal, error)

// Authenticate calls f.
func (f AuthFunc) Authenticate(c *gin.Context, token string) (hub.Principal, error) {
	return f(c, token)
}

// Errors an Authenticator returns; the client sees 401 unauthorized for all.
var (
	ErrNoToken      = errors.New("middleware: no token")
	ErrInvalidToken = errors.New("middleware: invalid token")
)

// FromGinContext returns an Authenticator that takes the Principal an
// earlier Gin middleware stored with c.Set(key, principal) (a hub.Principal
// or *hub.Principal), so an application's existing authentication (cookie
// sessions, API keys) is reused as it is. The token is ignored.
func FromGinContext(key string) Authenticator {
	if key == "" {
		panic("middleware: FromGinContext: empty key")
	}
	return AuthFunc(func(c *gin.Context, _ string) (hub.Principal, error) {
		switch p := c.Value(key).(type) {
		case hub.Principal:
			return p, nil
		case *hub.Principal:
			if p != nil {
				return *p, nil
			}
		}
		return hub.Principal{}, fmt.Errorf("%w: no principal under %q in the Gin context", ErrNoToken, key)
	})
}
