package hub

import (
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
	// soon as it passes.
	Expires time.Time
	// Claims holds the token's other claims, for the application.
	Claims map[string]any
}

// HasRole reports whether p has any of the roles.
func (p Principal) HasRole(roles ...string) bool {
	for _, r := range roles {
		if slices.Contains(p.Roles, r) {
			return true
		}
	}
	return false
}
