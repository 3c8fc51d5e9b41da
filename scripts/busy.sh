#!/usr/bin/env bash
# busy.sh COMMAND [ARG...] runs COMMAND while busy loops keep every core
# occupied (BUSY_LOOPS of them, by default `nproc`), as on a machine where
# other work runs: a test that passes here waits for what it observes, not
# for a time it guessed. The loops are killed when the script ends, however
# it ends (the command failing, Ctrl-C, SIGTERM); each loop also stops by
# itself if the script is gone. Exits with the command's status.
set -uo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 COMMAND [ARG...]" >&2
  exit 2
fi

n=${BUSY_LOOPS:-$(nproc)}
loops=()
cmd=""

cleanup() {
  trap - EXIT INT TERM HUP
  if [ ${#loops[@]} -gt 0 ]; then
    kill "${loops[@]}" 2>/dev/null
    wait "${loops[@]}" 2>/dev/null
  fi
}

stop() { # signal, exit status
  if [ -n "$cmd" ]; then
    # The command runs in a process group of its own (set -m below): pass
    # the signal to all of it (go test and the test binaries it started).
    kill -"$1" -- -"$cmd" 2>/dev/null
    wait "$cmd" 2>/dev/null
  fi
  cleanup
  exit "$2"
}

trap cleanup EXIT
trap 'stop INT 130' INT
trap 'stop TERM 143' TERM
trap 'stop HUP 129' HUP

parent=$$
for _ in $(seq "$n"); do
  # Spins; every 100,000 rounds it checks that this script still runs.
  sh -c 'i=0; while :; do i=$((i+1)); if [ "$i" -ge 100000 ]; then i=0; kill -0 "$1" 2>/dev/null || exit 0; fi; done' busy "$parent" &
  loops+=($!)
done
echo "busy.sh: ${#loops[@]} busy loops on $(nproc) cores; running: $*" >&2

set -m # the command gets a process group of its own, for stop above
"$@" &
cmd=$!
set +m
wait "$cmd"
status=$?
cmd=""
exit "$status"
