# Every test the project has runs from `make test`.
GO ?= go
FUZZTIME ?= 30s

.PHONY: test vet gotest fuzz bench

test: vet gotest

vet:
	$(GO) vet ./...

gotest:
	$(GO) test -race -count=1 -timeout 10m ./...

# Runs each fuzz target for FUZZTIME.
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$(FUZZTIME) ./validate

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...
