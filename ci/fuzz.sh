#!/usr/bin/env bash
# Runs every cargo-fuzz target for a while (FUZZ_SECONDS each, 20 by default) on its committed
# corpus, when the nightly toolchain is installed; installs cargo-fuzz when missing. A crash
# fails the run and leaves the input under fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${FUZZ_SECONDS:-20}

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "SKIPPED fuzz: no nightly toolchain (rustup toolchain install nightly)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install --locked cargo-fuzz >/dev/null
fi
cargo +nightly fuzz build
for target in $(cargo +nightly fuzz list); do
  mkdir -p "corpus/$target"
  echo "fuzz: $target for ${seconds}s"
  log=$(mktemp)
  status=0
  cargo +nightly fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E '^stat::number_of_executed_units|^SUMMARY|panicked|deadly signal' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log"
    echo "fuzz: $target FAILED (the input is saved under fuzz/artifacts/$target)"
    exit 1
  fi
  rm -f "$log"
done
echo "fuzz: every target ran ${seconds}s without a crash"
