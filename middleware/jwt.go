package middleware

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/ginws/ginws/hub"
)

// JWTOptions configures the JWT authenticator.
type JWTOptions struct {
	// Secret is the HMAC key (HS256, HS384, HS512).
	Secret []byte
	// PublicKey verifies asymmetric signatures: an *rsa.PublicKey (RS256),
	// *ecdsa.PublicKey (ES256) or ed25519.PublicKey (EdDSA).
	PublicKey any
	// Keyfunc, when set, chooses the key per token (key rotation, JWKS) and
	// replaces Secret and PublicKey.
	Keyfunc jwt.Keyfunc
	// Algorithms lists the accepted "alg" values; a token signed otherwise
	// is refused whatever its header says. By default HS256 for a Secret,
	// RS256, ES256 or EdDSA after the PublicKey's type; required with
	// Keyfunc. "none" is never accepted.
	Algorithms []string
	// Issuer and Audience, when set, must match the iss and aud claims.
	Issuer, Audience string
	// Leeway absorbs clock skew on exp, nbf and iat. By default none.
	Leeway time.Duration
	// RolesClaim names the claim with the roles, a string or an array of
	// strings. By default "roles".
	RolesClaim string
	// AllowNoExpiry accepts tokens without exp. By default they are refused:
	// a token that never expires cannot be withdrawn.
	AllowNoExpiry bool
}

// JWT returns an Authenticator for JSON Web Tokens (github.com/golang-jwt/jwt/v5):
// sub becomes the user id, exp the Principal's expiry (the hub closes the
// session with 4401 when it passes), RolesClaim the roles, and every claim
// is kept in Principal.Claims. A token whose header has "crit" is refused,
// since no extension is understood (RFC 7515 section 4.1.11). It panics on a
// configuration that cannot verify anything.
func JWT(o JWTOptions) Authenticator {
	keyfunc := o.Keyfunc
	algs := o.Algorithms
	switch {
	case keyfunc != nil:
		if len(algs) == 0 {
			panic("middleware: JWTOptions.Algorithms is required with Keyfunc")
		}
	case len(o.Secret) > 0:
		key := o.Secret
		keyfunc = func(*jwt.Token) (any, error) { return key, nil }
		if len(algs) == 0 {
			algs = []string{"HS256"}
		}
	case o.PublicKey != nil:
		key := o.PublicKey
		keyfunc = func(*jwt.Token) (any, error) { return key, nil }
		if len(algs) == 0 {
			switch key.(type) {
			case *rsa.PublicKey:
				algs = []string{"RS256"}
			case *ecdsa.PublicKey:
				algs = []string{"ES256"}
			case ed25519.PublicKey:
				algs = []string{"EdDSA"}
			default:
				panic(fmt.Sprintf("middleware: JWTOptions.PublicKey of unsupported type %T", key))
			}
		}
	default:
		panic("middleware: JWTOptions needs Secret, PublicKey or Keyfunc")
	}
	for _, a := range algs {
		if strings.EqualFold(a, "none") {
			panic(`middleware: JWTOptions.Algorithms must not contain "none"`)
		}
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(algs), jwt.WithLeeway(o.Leeway), jwt.WithIssuedAt()}
	if o.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(o.Issuer))
	}
	if o.Audience != "" {
		opts = append(opts, jwt.WithAudience(o.Audience))
	}
	if !o.AllowNoExpiry {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	rolesClaim := o.RolesClaim
	if rolesClaim == "" {
		rolesClaim = "roles"
	}
	a := &jwtAuth{parser: jwt.NewParser(opts...), keyfunc: keyfunc, roles: rolesClaim}
	return a
}

type jwtAuth struct {
	parser  *jwt.Parser
	keyfunc jwt.Keyfunc
	roles   string
}

func (a *jwtAuth) Authenticate(_ *gin.Context, token string) (hub.Principal, error) {
	if token == "" {
		return hub.Principal{}, ErrNoToken
	}
	claims := jwt.MapClaims{}
	tok, err := a.parser.ParseWithClaims(token, claims, a.keyfunc)
	if err != nil {
		return hub.Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	// RFC 7515 section 4.1.11: the issuer requires every extension crit
	// names to be understood, and golang-jwt understands none; a crit that
	// is empty or not a list of names is malformed.
	if _, ok := tok.Header["crit"]; ok {
		return hub.Principal{}, fmt.Errorf("%w: crit header names extensions that are not understood", ErrInvalidToken)
	}
	sub, err := claims.GetSubject()
	if err != nil || sub == "" {
		return hub.Principal{}, fmt.Errorf("%w: no sub claim", ErrInvalidToken)
	}
	p := hub.Principal{UserID: sub, Claims: claims}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		p.Expires = exp.Time
	}
	roles, err := rolesOf(claims[a.roles])
	if err != nil {
		return hub.Principal{}, fmt.Errorf("%w: claim %q: %w", ErrInvalidToken, a.roles, err)
	}
	p.Roles = roles
	return p, nil
}

func rolesOf(v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return strings.Fields(v), nil
	case []any:
		roles := make([]string, 0, len(v))
		for _, r := range v {
			s, ok := r.(string)
			if !ok {
				return nil, errors.New("roles must be strings")
			}
			roles = append(roles, s)
		}
		return roles, nil
	}
	return nil, errors.New("roles must be a string or an array of strings")
}
