package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// balance runs a TCP load balancer on loopback, as in front of two nodes
// during a deploy: new connections go to a while its health check (every
// 100 ms) passes, else to b. It prints "balancing ADDR" and runs until its
// standard input closes or says quit.
func balance(a, b, health string, quit <-chan struct{}) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	var aDown atomic.Bool
	go func() {
		for {
			select {
			case <-quit:
				return
			case <-time.After(100 * time.Millisecond):
			}
			resp, err := http.Get(health)
			if err == nil {
				resp.Body.Close()
			}
			aDown.Store(err != nil || resp.StatusCode != http.StatusOK)
		}
	}()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			backend := a
			if aDown.Load() {
				backend = b
			}
			go func() {
				out, err := net.Dial("tcp", backend)
				if err != nil {
					in.Close()
					return
				}
				go func() { _, _ = io.Copy(out, in); out.Close() }()
				_, _ = io.Copy(in, out)
				in.Close()
			}()
		}
	}()
	fmt.Printf("balancing %s\n", ln.Addr())
	<-quit
	ln.Close()
}
