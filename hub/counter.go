package hub

import (
	"context"
	"sync"
)

// counter counts running things and lets Shutdown wait for zero. Unlike a
// sync.WaitGroup it allows adding while another goroutine waits.
type counter struct {
	mu   sync.Mutex
	n    int
	idle chan struct{}
}

func (c *counter) add(d int) {
	c.mu.Lock()
	c.n += d
	if c.n == 0 && c.idle != nil {
		close(c.idle)
		c.idle = nil
	}
	c.mu.Unlock()
}

// wait returns when the count is zero, or ctx.Err() when ctx ends first.
func (c *counter) wait(ctx context.Context) error {
	c.mu.Lock()
	if c.n == 0 {
		c.mu.Unlock()
		return nil
	}
	if c.idle == nil {
		c.idle = make(chan struct{})
	}
	idle := c.idle
	c.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
