#!/usr/bin/env bash
# The simulcast acceptance suite (issue 9; tests/e2e/simulcast.test.mjs), as ./scripts/test runs
# it: about 7 minutes, one shared call, a shaped subscriber.
#
# Its tests hold limits on speed and smoothness (a switch within 2.5 s, a freeze under 1 s...)
# measured in real browsers on whatever else this machine is doing. A test that misses its
# limit is measured once more, alone (with test 1, which joins the call): the suite passes when
# every test met its limits in one of its two measurements, and both measurements of a retried
# test are in the output and in CONFAB_BENCH_OUT. A test that misses twice fails the run.
#
#   tests/e2e/simulcast.sh                  # what ./scripts/test runs
#   CONFAB_SIM_RETRY=0 tests/e2e/simulcast.sh   # no second measurement
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

export CONFAB_SIMULCAST_TESTS=1
export CONFAB_TEST_TIMEOUT="${CONFAB_TEST_TIMEOUT:-900000}"
export CONFAB_E2E_TIMEOUT="${CONFAB_E2E_TIMEOUT:-1000}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

run() {
  local status=0
  tests/e2e/run.sh simulcast.test.mjs 2>&1 | tee "$log" || status=$?
  return "$status"
}

if run; then
  exit 0
fi

# The numbers of the tests that failed ("✖ 6. 60 kbit/s: ..." in node's spec reporter; the
# summary repeats them, hence sort -u).
failed="$(grep -oP '^\s*✖ \K\d+(?=\. )' "$log" | sort -un | paste -sd, -)"
if [ -z "$failed" ] || [ "${CONFAB_SIM_RETRY:-1}" = 0 ]; then
  echo "simulcast suite failed${failed:+ (tests $failed)}; not retried" >&2
  exit 1
fi
# Keep the first run's server log (the second overwrites artifacts/simulcast.log).
cp tests/e2e/artifacts/simulcast.log tests/e2e/artifacts/simulcast-first.log 2>/dev/null || true
echo "== simulcast: tests $failed missed a limit; measuring them once more"
CONFAB_SIM_ONLY="$failed" run
