package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/metrics"
	"github.com/ginws/ginws/wire"
)

// TestActivityKeepsAFixedWindow drives the recorder with a clock of its own:
// each second has its slot, gauges carry over quiet seconds, and however
// long the server runs the series never outgrow the window.
func TestActivityKeepsAFixedWindow(t *testing.T) {
	a := newActivity(metrics.New(metrics.Options{}))
	clock := a.start
	a.now = func() time.Time { return clock }

	a.SessionOpened()
	a.SessionOpened()
	a.joined("lobby")
	a.joined("lobby")
	a.Emitted("chat.message", 2)
	clock = clock.Add(2 * time.Second) // second 1 is quiet
	a.Handled("chat.send", "", time.Millisecond)
	a.Handled("chat.send", wire.CodeValidationFailed, time.Millisecond)
	a.SessionClosed(wire.CloseForbidden)
	a.SessionClosed(3000) // a code of the peer's choosing
	a.left("lobby")

	s := a.snapshot()
	assert.Equal(t, window, s.Window)
	assert.Equal(t, []int{2, 2, 0}, s.Connections)
	assert.Equal(t, []int{1, 1, 1}, s.Rooms)
	assert.Equal(t, []int{2, 0, 0}, s.Deliveries)
	assert.Equal(t, []int{0, 0, 2}, s.Messages)
	assert.Equal(t, []int{0, 0, 1}, s.Errors)
	assert.Equal(t, map[string][]int{"4403": {0, 0, 1}, "other": {0, 0, 1}}, s.Closes)
	assert.Equal(t, []RoomSessions{{Room: "lobby", Sessions: 1}}, s.RoomList)
	assert.Equal(t, a.start.Add(3*time.Second).UnixMilli(), s.Now, "the end of the newest second")

	// A leave reported before its join (a session that disconnects while
	// joining) nets out, and the room is forgotten.
	a.left("attic")
	a.joined("attic")
	a.left("lobby")
	assert.Empty(t, a.snapshot().RoomList)
	assert.Empty(t, a.rooms, "rooms at 0 are forgotten")

	clock = clock.Add(1000 * time.Second)
	s = a.snapshot()
	require.Len(t, s.Connections, window, "the window, not the uptime")
	assert.Equal(t, 0, s.Connections[0], "levels carry over quiet seconds")
	assert.Equal(t, 0, s.Rooms[window-1])
	assert.Equal(t, 0, sum(s.Deliveries)+sum(s.Messages)+sum(s.Errors))
	assert.Empty(t, s.Closes, "closes older than the window are gone")
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// adminDo calls the admin API with token and decodes the answer into out.
func adminDo(t *testing.T, method, url, token, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(data, out), "%s", data)
	}
	return resp.StatusCode
}

func TestAdminView(t *testing.T) {
	addr, _ := startApp(t, nil, nil)
	base := "http://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	resp, err := http.Get(base + "/admin")
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the page loads for anyone; its data is for admins")
	assert.Contains(t, string(page), "ginws live view")

	var refusal struct{ Error struct{ Code string } }
	assert.Equal(t, http.StatusUnauthorized, adminDo(t, "GET", base+"/api/admin/stats", "", "", &refusal))
	assert.Equal(t, "unauthorized", refusal.Error.Code)
	assert.Equal(t, http.StatusUnauthorized, adminDo(t, "GET", base+"/api/admin/stats", "not.a.token", "", &refusal))
	member := loginToken(t, base, "alice", "member", nil)
	assert.Equal(t, http.StatusForbidden, adminDo(t, "GET", base+"/api/admin/stats", member, "", &refusal))
	assert.Equal(t, "forbidden", refusal.Error.Code)
	assert.Equal(t, http.StatusForbidden, adminDo(t, "POST", base+"/api/admin/disconnect", member, `{"user":"bob"}`, &refusal))

	admin := loginToken(t, base, "root", "admin", nil)
	stats := func() Snapshot {
		var s Snapshot
		require.Equal(t, http.StatusOK, adminDo(t, "GET", base+"/api/admin/stats", admin, "", &s))
		return s
	}
	last := func(xs []int) int { return xs[len(xs)-1] }
	const wait, tick = 5 * time.Second, 10 * time.Millisecond

	alice := chatClient(t, addr, "alice", "member")
	bob := chatClient(t, addr, "bob", "member")
	_, err = alice.Join(ctx, "lobby")
	require.NoError(t, err)
	_, err = bob.Join(ctx, "lobby")
	require.NoError(t, err)
	assert.Eventually(t, func() bool {
		s := stats()
		return last(s.Connections) == 2 && s.RoomCount == 1
	}, wait, tick, "two sessions in one room")
	assert.Equal(t, []RoomSessions{{Room: "lobby", Sessions: 2}}, stats().RoomList)

	before := sum(stats().Deliveries)
	_, err = alice.Request(ctx, "chat.send", SendChat{Room: "lobby", Text: "hello"})
	require.NoError(t, err)
	assert.Eventually(t, func() bool { return sum(stats().Deliveries)-before >= 2 }, wait, tick, "the message reached both members")

	var members struct {
		Room    string
		Members []struct{ User string }
	}
	require.Equal(t, http.StatusOK, adminDo(t, "GET", base+"/api/admin/members?room=lobby", admin, "", &members))
	var users []string
	for _, m := range members.Members {
		users = append(users, m.User)
	}
	assert.ElementsMatch(t, []string{"alice", "bob"}, users)
	assert.Equal(t, http.StatusBadRequest, adminDo(t, "GET", base+"/api/admin/members", admin, "", &refusal))

	assert.Equal(t, http.StatusBadRequest, adminDo(t, "POST", base+"/api/admin/disconnect", admin, `{"user":"../x"}`, &refusal))
	var kicked struct{ Disconnected string }
	require.Equal(t, http.StatusOK, adminDo(t, "POST", base+"/api/admin/disconnect", admin, `{"user":"bob"}`, &kicked))
	assert.Equal(t, "bob", kicked.Disconnected)
	assert.Eventually(t, func() bool {
		s := stats()
		return sum(s.Closes["4403"]) == 1 && last(s.Connections) == 1
	}, wait, tick, "bob's session closed with 4403")
	require.Equal(t, http.StatusOK, adminDo(t, "GET", base+"/api/admin/members?room=lobby", admin, "", &members))
	require.Len(t, members.Members, 1)
	assert.Equal(t, "alice", members.Members[0].User)
}

// TestAdminMembersRefusedAndBounded: the room is checked by the hub's rule
// for room names, the list is cut at maxMembersListed with the total told,
// and the disconnect body is bounded as the login's is.
func TestAdminMembersRefusedAndBounded(t *testing.T) {
	defer func(n int) { maxMembersListed = n }(maxMembersListed)
	maxMembersListed = 2
	addr, _ := startApp(t, nil, nil)
	base := "http://" + addr
	admin := loginToken(t, base, "root", "admin", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, room := range []string{"", "no%20spaces", "a%3Fb", strings.Repeat("r", 129)} {
		var refusal struct{ Error struct{ Code string } }
		assert.Equal(t, http.StatusBadRequest, adminDo(t, "GET", base+"/api/admin/members?room="+room, admin, "", &refusal), "%q", room)
		assert.Equal(t, "bad_request", refusal.Error.Code)
	}
	var list memberList
	require.Equal(t, http.StatusOK, adminDo(t, "GET", base+"/api/admin/members?room="+strings.Repeat("r", 128), admin, "", &list),
		"128 characters are a room name")
	assert.Equal(t, memberList{Room: strings.Repeat("r", 128), Members: []hub.Member{}}, list)

	for _, user := range []string{"carol", "alice", "bob"} {
		_, err := chatClient(t, addr, user, "member").Join(ctx, "team/dev.ops:1-a_b")
		require.NoError(t, err)
	}
	require.Equal(t, http.StatusOK, adminDo(t, "GET", base+"/api/admin/members?room=team/dev.ops:1-a_b", admin, "", &list))
	assert.Equal(t, 3, list.Total)
	assert.True(t, list.Truncated)
	require.Len(t, list.Members, 2)
	assert.Equal(t, []string{"alice", "bob"}, []string{list.Members[0].User, list.Members[1].User}, "the first by user")

	var raw map[string]any
	require.Equal(t, http.StatusOK, adminDo(t, "GET", base+"/api/admin/members?room=empty", admin, "", &raw))
	assert.Equal(t, map[string]any{"room": "empty", "members": []any{}, "total": 0.0, "truncated": false}, raw)

	var refusal struct {
		Error struct{ Code, Message string }
	}
	big := `{"user":"` + strings.Repeat("a", 5000) + `"}`
	assert.Equal(t, http.StatusRequestEntityTooLarge, adminDo(t, "POST", base+"/api/admin/disconnect", admin, big, &refusal))
	assert.Equal(t, "too_large", refusal.Error.Code)
	assert.Equal(t, "the body is larger than 4096 bytes", refusal.Error.Message)
}
