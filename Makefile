# `make test` runs every test the project has: it installs what is missing
# (scripts/deps.sh), vets, runs the Go tests with the race detector, the
# JavaScript client's tests against a real server, and the browser test of
# the example in Debian's Chromium. Each step stops by itself.
#
# `make busytest` runs the Go tests as `gotest` does while busy loops keep
# every core occupied (scripts/busy.sh; BUSY_LOOPS=n sets how many), as on a
# machine where other work runs: the tests wait for what they observe, never
# for a guessed time, and pass there too. The loops end with the run.
GO ?= go
FUZZTIME ?= 30s

.PHONY: test deps vet gotest busytest jstest browsertest fuzz bench

test: deps vet gotest jstest browsertest

deps:
	./scripts/deps.sh

vet:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.6.1 ./...

gotest:
	GINWS_RELIABILITY_REPORT=$(CURDIR)/docs/RELIABILITY.md $(GO) test -race -count=1 -timeout 15m ./...

busytest:
	GINWS_RELIABILITY_REPORT=$(CURDIR)/docs/RELIABILITY.md ./scripts/busy.sh $(GO) test -race -count=1 -timeout 15m ./...

jstest:
	cd client/js && npm test

browsertest:
	cd example/browser && npm test

# Runs each fuzz target for FUZZTIME.
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./validate
	$(GO) test -run='^$$' -fuzz='^FuzzExtractToken$$' -fuzztime=$(FUZZTIME) ./middleware
	$(GO) test -run='^$$' -fuzz='^FuzzOrigin$$' -fuzztime=$(FUZZTIME) ./middleware
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeEnvelope$$' -fuzztime=$(FUZZTIME) ./hub
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=$(FUZZTIME) ./hub/redis
	$(GO) test -run='^$$' -fuzz='^FuzzReader$$' -fuzztime=$(FUZZTIME) ./internal/deflate

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...
