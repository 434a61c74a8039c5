#!/usr/bin/env bash
# Run confab's end-to-end suite: type-check web/, then the node tests inside a fresh network
# namespace holding only loopback (nothing can leave the machine). Needs root (unshare -n).
# The mount namespace is private too (-m), with a tmpfs of its own on /run/netns, so that the
# subscriber namespaces shaping.mjs makes with `ip netns add` vanish with the run, even a crashed
# one, and never show in the machine's `ip netns list`.
#
#   tests/e2e/run.sh                      # every *.test.mjs
#   tests/e2e/run.sh call.test.mjs        # some of them
#   CONFAB_BIN=/path/to/confab tests/e2e/run.sh
#   CONFAB_TEST_TIMEOUT=900000 CONFAB_E2E_TIMEOUT=1000 tests/e2e/run.sh simulcast.test.mjs  # long files
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
# node's --test-timeout bounds each test and each file (CONFAB_TEST_TIMEOUT ms, default 180000);
# this one (CONFAB_E2E_TIMEOUT s) stops a run that hangs anyway.
exec timeout --kill-after=10 "${CONFAB_E2E_TIMEOUT:-1200}" \
  unshare -n -m -- bash -c '
    set -e
    ip link set lo up
    mkdir -p /run/netns && mount -t tmpfs -o size=1m,mode=755 confab-netns /run/netns
    cd tests/e2e
    if [ "$#" -eq 0 ]; then set -- *.test.mjs; fi
    exec node --test --test-reporter=spec --test-concurrency=1 --test-timeout="${CONFAB_TEST_TIMEOUT:-180000}" "$@"' bash "$@"
