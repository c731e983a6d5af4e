#!/usr/bin/env bash
# `make test-fuzz`: runs each libFuzzer target of BUILD_DIR for SECONDS,
# after replaying its committed corpus, and fails on any crash, leak,
# sanitizer report, timeout or out-of-memory.
#
#   tests/fuzz/run_fuzzers.sh BUILD_DIR SECONDS [TARGET...]
#
# TARGET: tokenizer, score_request, model_infer, http_infer, model_config
# (default: all). Inputs found during the run go to BUILD_DIR/fuzz-corpus/
# (the committed corpus, tests/fuzz/corpus/, is only read); a crash leaves
# its input in BUILD_DIR/fuzz-artifacts/<target>/ and the log in
# BUILD_DIR/fuzz-logs/<target>.log. FUZZ_JOBS targets run at once (default:
# the CPU count). docs/memory-safety.md: turning a crash into a regression
# test, and longer runs.
set -uo pipefail

build_dir=${1:?usage: run_fuzzers.sh BUILD_DIR SECONDS [TARGET...]}
seconds=${2:?usage: run_fuzzers.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=(tokenizer score_request model_infer http_infer model_config)
fi

here=$(cd "$(dirname "$0")" && pwd)
build_dir=$(cd "$build_dir" && pwd)
# halt_on_error: the first report ends the run (libFuzzer then saves the
# input); the rest are libFuzzer's defaults made explicit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

# One target: its log's last lines say how it went.
fuzz() {  # fuzz TARGET
  local target=$1
  local seeds=$here/corpus/$target
  local corpus=$build_dir/fuzz-corpus/$target
  local artifacts=$build_dir/fuzz-artifacts/$target/
  local log=$build_dir/fuzz-logs/$target.log
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  local dict=()
  [[ -f $here/dict/$target.dict ]] && dict=(-dict="$here/dict/$target.dict")
  # -timeout: an input that runs 10 s is a hang; -rss_limit_mb: 2 GiB is
  # far above what any input should need.
  "$build_dir/tests/fuzz/${target}_fuzzer" -max_total_time="$seconds" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts" "${dict[@]}" "$corpus" "$seeds" \
    > "$log" 2>&1
  echo "exit: $?" >> "$log"
}

# As many targets at once as there are CPUs: each still gets its seconds
# of one CPU, and the suite's wall time shrinks accordingly.
parallel=${FUZZ_JOBS:-$(nproc)}
for target in "${targets[@]}"; do
  while [[ $(jobs -rp | wc -l) -ge $parallel ]]; do wait -n; done
  fuzz "$target" &
done
wait

passed=0
failed=0
for target in "${targets[@]}"; do
  log=$build_dir/fuzz-logs/$target.log
  rc=$(grep -oP '^exit: \K\d+' "$log" | tail -1)
  execs=$(grep -oP 'stat::number_of_executed_units:\s*\K\d+' "$log" | tail -1)
  cov=$(grep -oP '#\d+\s+DONE\s+cov: \K\d+' "$log" | tail -1)
  if [[ $rc == 0 ]]; then
    passed=$((passed + 1))
    echo "fuzz $target: ok, ${execs:-?} executions in $seconds s, ${cov:-?} edges covered"
  else
    failed=$((failed + 1))
    echo "fuzz $target: FAILED (exit $rc); inputs in $build_dir/fuzz-artifacts/$target/, log $log:"
    grep -m1 -A40 -E '==[0-9]+==ERROR|runtime error|FUZZ_CHECK|deadly signal|libFuzzer: (timeout|out-of-memory)' "$log"
  fi
done
echo "test-fuzz: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
