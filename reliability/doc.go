// Package reliability holds the adversarial test suite of ginws: hostile
// handshakes and frames, abuse, network faults and lifecycle churn, each run
// over real loopback connections through Gin, the middleware and the hub.
// It has no code of its own. When GINWS_RELIABILITY_REPORT names a file, a
// passing run writes there the markdown table of what was tried and what
// was observed (docs/RELIABILITY.md, linked from the README).
package reliability
