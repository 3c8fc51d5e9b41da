#!/usr/bin/env bash
# Installs what the tests need beyond Go and Node: Debian's chromium (the
# browser test) and redis-server with redis-cli (the Redis broker's tests on
# one server and on a cluster), then the npm
# packages from their lock files. Runs one apt-get update at most.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools) # redis-cli --cluster create
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]} from Debian packages"
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "deps: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for dir in client/js example/browser tools/schemacheck; do
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
done
