package main

import (
	"errors"
	"fmt"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/wire"
)

// maxImage bounds a shared image, so that its frame stays within the hub's
// 64 KiB frame limit (a larger frame would close the connection with 1009);
// the page checks it before sending.
const maxImage = 48 << 10

// Images shared in a room travel as binary frames, never kept in history.
// From the page: [room length][room][image]. To the room's members:
// [room length][room][user length][user][image]. Lengths are one byte:
// rooms are at most 128 bytes and users 32.
func shareImages(h *hub.Hub) {
	h.HandleBinary(func(c *hub.Context, data []byte) error {
		room, image, err := splitShare(data)
		if err != nil {
			return &hub.Error{Code: wire.CodeBadRequest, Message: err.Error()}
		}
		if !c.User().HasRole("member", "admin") {
			return &hub.Error{Code: wire.CodeForbidden, Message: "only members share images"}
		}
		if len(image) > maxImage {
			return &hub.Error{Code: wire.CodeTooLarge, Message: fmt.Sprintf("an image may be at most %d KiB", maxImage>>10)}
		}
		if !c.Session().InRoom(room) {
			return hub.ErrNotMember
		}
		user := c.User().UserID
		out := make([]byte, 0, 2+len(room)+len(user)+len(image))
		out = append(append(out, byte(len(room))), room...)
		out = append(append(out, byte(len(user))), user...)
		return c.Hub().To(room).EmitBinary(append(out, image...))
	})
}

// splitShare reads a page's share frame.
func splitShare(data []byte) (room string, image []byte, err error) {
	if len(data) < 1 || int(data[0]) == 0 || len(data) < 1+int(data[0]) {
		return "", nil, errors.New("a shared image starts with its room: [length][room]")
	}
	n := int(data[0])
	if len(data) == 1+n {
		return "", nil, errors.New("the shared image is empty")
	}
	return string(data[1 : 1+n]), data[1+n:], nil
}
