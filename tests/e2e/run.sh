#!/usr/bin/env bash
# Run confab's end-to-end suite: type-check web/, then the node tests inside a fresh network
# namespace holding only loopback (nothing can leave the machine). Needs root (unshare -n).
#
#   tests/e2e/run.sh                      # every *.test.mjs
#   tests/e2e/run.sh call.test.mjs        # some of them
#   CONFAB_BIN=/path/to/confab tests/e2e/run.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

if [ ! -x tests/e2e/node_modules/.bin/tsc ] || [ ! -d tests/e2e/node_modules/playwright-core ]; then
  (cd tests/e2e && npm ci --no-audit --no-fund)
fi

echo "== tsc -p web/tsconfig.json"
tests/e2e/node_modules/.bin/tsc -p web/tsconfig.json

export CONFAB_BIN="${CONFAB_BIN:-$root/target/debug/confab}"
if [ ! -x "$CONFAB_BIN" ]; then
  echo "no confab binary at $CONFAB_BIN: run 'cargo build' first, or set CONFAB_BIN" >&2
  exit 1
fi

echo "== node --test ${*:-*.test.mjs} (in a network namespace with loopback only)"
# Each test has its own timeout; this one stops a run that hangs anyway.
exec timeout --kill-after=10 "${CONFAB_E2E_TIMEOUT:-480}" \
  unshare -n -- bash -c '
    set -e
    ip link set lo up
    cd tests/e2e
    if [ "$#" -eq 0 ]; then set -- *.test.mjs; fi
    exec node --test --test-reporter=spec --test-concurrency=1 --test-timeout=180000 "$@"' bash "$@"
