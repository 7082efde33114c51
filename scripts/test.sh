#!/usr/bin/env bash
# dost's whole test suite (`deno task test`): installs the peers, runs every unit test
# (src/**/*_test.ts) and integration test (tests/*_test.ts), and ends with one line
#   tests: N passed, M failed, K skipped
# Exits with deno test's exit code. Extra arguments go to `deno test` (e.g. --filter socks5).
#
# Test files run one after another (no --parallel): integration tests start dost processes and
# peers, and on a 2-core machine parallel files make timings, and so results, flaky.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/setup-peers.sh || echo "tests: setup-peers failed (exit $?); peers may be missing" >&2

# Integration tests hold many sockets (idle-tunnel and load tests).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Plain logs in CI (deno colours its output even when it goes to a pipe).
[ -n "${CI:-}" ] && export NO_COLOR=1

out="$(mktemp "${TMPDIR:-/tmp}/dost-test.XXXXXX.log")"
trap 'rm -f "$out"' EXIT

dirs=()
for d in src tests; do [ -d "$d" ] && dirs+=("$d"); done

# A hung test must not hang CI: stop the run after DOST_TEST_TIMEOUT (default 25 min).
limit="${DOST_TEST_TIMEOUT:-25m}"
timeout --kill-after=30s "$limit" deno test -A --unstable-net "$@" "${dirs[@]}" 2>&1 | tee "$out"
code=${PIPESTATUS[0]}
if [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then
  echo "tests: deno test was stopped after $limit (DOST_TEST_TIMEOUT)" >&2
fi

plain="$(sed -e 's/\x1b\[[0-9;]*[A-Za-z]//g' "$out")"

# Deno's summary: `ok | 12 passed (34 steps) | 0 failed | 2 ignored (5s)`
#            or: `FAILED | 3 passed (2 steps) | 1 failed | 1 ignored (128ms)`
# ("| N ignored" and "| N filtered out" appear only when non-zero).
summary="$(printf '%s\n' "$plain" | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -n 1)"
num() { printf '%s\n' "$summary" | grep -oE "[0-9]+ $1" | head -n 1 | grep -oE '^[0-9]+' || echo 0; }

ignored_names="$(printf '%s\n' "$plain" | sed -n 's/^\([^ ].*\) \.\.\. ignored ([^)]*)$/\1/p')"
if [ -n "$ignored_names" ]; then
  echo
  echo "ignored tests:"
  printf '%s\n' "$ignored_names" | sed 's/^/  /'
  reasons="$(printf '%s\n' "$plain" | grep -E '^SKIP: ' | sort -u)"
  [ -n "$reasons" ] && printf '%s\n' "$reasons" | sed 's/^/  /'
fi

echo
if [ -n "$summary" ]; then
  echo "tests: $(num passed) passed, $(num failed) failed, $(num ignored) skipped"
else
  # No summary: type-check or module-load error, or deno itself failed.
  echo "deno test ended without a summary line (exit $code); see the errors above"
  [ "$code" -eq 0 ] && code=1
  echo "tests: 0 passed, 1 failed, 0 skipped"
fi
exit "$code"
