#!/usr/bin/env bash
# The tests: `cargo test --workspace` (arguments are passed on), then one summary of every
# test that could not run and was skipped, by group (a missing service, browser or binary).
# The services come from SESSION_TEST_*; SESSION_TEST_REQUIRE=1 turns every skip into a failure.
set -uo pipefail
cd "$(dirname "$0")/.."

SESSION_TEST_SKIP_LOG=$(mktemp "${TMPDIR:-/tmp}/session-test-skips.XXXXXX")
export SESSION_TEST_SKIP_LOG
trap 'rm -f "$SESSION_TEST_SKIP_LOG"' EXIT

cargo test --workspace --no-fail-fast "$@"
status=$?

echo
if [ -s "$SESSION_TEST_SKIP_LOG" ]; then
  total=$(sort -u "$SESSION_TEST_SKIP_LOG" | cut -f2 | sort -u | wc -l)
  echo "== SKIPPED: $total tests could not run and did nothing (they show as 'ok' above):"
  sort -u "$SESSION_TEST_SKIP_LOG" | cut -f1 | sort | uniq -c | sort -rn |
    while read -r count group; do printf '   %-16s %5d tests\n' "$group" "$count"; done
  echo "   Set the SESSION_TEST_* URLs (see README.md) and install what the SKIPPED lines name."
else
  echo "== Skipped: none (every test ran)"
fi
exit $status
