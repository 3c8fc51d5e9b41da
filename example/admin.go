package main

import (
	"cmp"
	"errors"
	"io/fs"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/middleware"
	"github.com/ginws/ginws/wire"
)

// disconnectRequest is the body of POST /api/admin/disconnect.
type disconnectRequest struct {
	User string `json:"user" binding:"required,min=1,max=32,alphanum"`
}

// adminRoutes serves the live view of the hub: the page on /admin, which
// anyone may load, and its data on /api/admin/..., for tokens with the
// admin role only.
//
//	GET  /api/admin/stats              the activity of the last minutes (Snapshot)
//	GET  /api/admin/members?room=NAME  the sessions in a room, on every node
//	POST /api/admin/disconnect         {"user":"bob"}: close bob's sessions with 4403
func adminRoutes(r *gin.Engine, h *hub.Hub, act *activity, auth middleware.Authenticator, static fs.FS) {
	r.GET("/admin", func(c *gin.Context) { c.FileFromFS("admin.html", http.FS(static)) })
	api := r.Group("/api/admin", requireAdmin(auth))
	api.GET("/stats", func(c *gin.Context) { c.JSON(http.StatusOK, act.snapshot()) })
	api.GET("/members", func(c *gin.Context) {
		room := c.Query("room")
		members, err := h.Members(c, room)
		if errors.Is(err, hub.ErrBadName) {
			refuse(c, http.StatusBadRequest, "bad_request", "name the room: ?room=NAME, 1-128 letters, digits or . _ : / -")
			return
		}
		if err != nil {
			refuse(c, http.StatusInternalServerError, "internal", "cannot list the members")
			return
		}
		c.JSON(http.StatusOK, listMembers(room, members))
	})
	api.POST("/disconnect", func(c *gin.Context) {
		var req disconnectRequest
		if !bindBody(c, &req, "user must be 1-32 letters or digits") {
			return
		}
		// 4403: the page does not reconnect by itself, so the kick holds
		// until its user signs in again.
		if err := h.DisconnectUser(c, req.User, wire.CloseForbidden); err != nil {
			refuse(c, http.StatusBadGateway, "unavailable", "other nodes could not be told")
			return
		}
		c.JSON(http.StatusOK, gin.H{"disconnected": req.User})
	})
}

// maxMembersListed bounds the answer of /api/admin/members: a room of a
// load test may hold tens of thousands of sessions, more than a page can
// show or an operator read. A variable, so that tests can lower it.
var maxMembersListed = 500

// memberList is the answer of /api/admin/members: the first members by
// user and session, and how many there are in all.
type memberList struct {
	Room      string       `json:"room"`
	Members   []hub.Member `json:"members"`
	Total     int          `json:"total"`
	Truncated bool         `json:"truncated"`
}

// listMembers sorts before cutting, so that the same members are listed
// from one poll to the next, and each user's sessions stay together.
func listMembers(room string, members []hub.Member) memberList {
	slices.SortFunc(members, func(a, b hub.Member) int {
		return cmp.Or(cmp.Compare(a.User, b.User), cmp.Compare(a.Session, b.Session))
	})
	out := memberList{Room: room, Members: members, Total: len(members)}
	if len(members) > maxMembersListed {
		out.Members, out.Truncated = members[:maxMembersListed], true
	}
	return out
}

// requireAdmin lets through requests whose bearer token the WebSocket's
// authenticator accepts and whose principal has the admin role.
func requireAdmin(auth middleware.Authenticator) gin.HandlerFunc {
	return func(c *gin.Context) {
		token, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
		if !ok || token == "" {
			refuse(c, http.StatusUnauthorized, "unauthorized", "sign in as an admin: send Authorization: Bearer <token>")
			return
		}
		p, err := auth.Authenticate(c, token)
		if err != nil {
			refuse(c, http.StatusUnauthorized, "unauthorized", "the token is invalid or expired: sign in again")
			return
		}
		if !p.HasRole("admin") {
			refuse(c, http.StatusForbidden, "forbidden", "the live view is for the admin role only")
			return
		}
		c.Next()
	}
}

// refuse answers with the JSON error shape of the rest of the example.
func refuse(c *gin.Context, status int, code, message string) {
	c.AbortWithStatusJSON(status, gin.H{"error": gin.H{"code": code, "message": message}})
}
