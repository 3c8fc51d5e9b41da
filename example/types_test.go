package main

import (
	"flag"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ginws/ginws/hub"
	"github.com/ginws/ginws/internal/wstest"
	"github.com/ginws/ginws/metrics"
	"github.com/ginws/ginws/schema"
)

var update = flag.Bool("update", false, "rewrite web/ginws-events.d.ts from the handlers")

// TestPageTypes keeps web/ginws-events.d.ts in step with the handlers and
// type-checks the page against it with tsc (go test ./example -update
// regenerates the file).
func TestPageTypes(t *testing.T) {
	h := newHub(wstest.Quiet, nil, newActivity(metrics.New(metrics.Options{})), hub.Options{})
	defer h.Shutdown(t.Context())
	want := schema.TypeScript(h, "/js/ginws.js")
	const file = "web/ginws-events.d.ts"
	if *update {
		require.NoError(t, os.WriteFile(file, []byte(want), 0o644))
	}
	got, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, want, string(got), "%s is stale: run go test ./example -run TestPageTypes -update", file)

	tsc := "../tools/schemacheck/node_modules/.bin/tsc"
	_, err = os.Stat(tsc)
	require.NoError(t, err, "run `make deps`: tsc comes from the npm package typescript")
	out, err := exec.Command(tsc, "-p", "web/jsconfig.json").CombinedOutput()
	assert.NoError(t, err, "the page does not type-check:\n%s", out)
}
