package hub

import (
	"context"
	"slices"
	"time"
)

// Principal is the authenticated identity behind a session, produced by the
// middleware's Authenticator before the upgrade.
type Principal struct {
	// UserID identifies the user; every session of a user shares it.
	UserID string
	// Roles are checked by RequireRole.
	Roles []string
	// Expires, when set, closes the session with 4401 (token_expired) as
	// soon as it passes, unless the client refreshed its token in-band
	// before; the client is told with token.expiring (PROTOCOL.md
	// section 6).
	Expires time.Time
	// Claims holds the token's other claims, for the application.
	Claims map[string]any
}

// Refresher checks a token that a session sends in-band with the refresh
// request (PROTOCOL.md section 6) as the upgrade's token was checked, and
// returns its principal. middleware.New passes its Authenticator's to
// Hub.AcceptRefreshable.
type Refresher func(ctx context.Context, token string) (Principal, error)

// HasRole reports whether p has any of the roles.
func (p Principal) HasRole(roles ...string) bool {
	for _, r := range roles {
		if slices.Contains(p.Roles, r) {
			return true
		}
	}
	return false
}
