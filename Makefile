# Thin wrapper over CMake, ctest and pytest. `make serve` and `make test` are
# the two commands of the README; both install what they need first.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
PYTHON := /usr/bin/python3
GRPC_ADDRESS ?= 0.0.0.0:50051
HTTP_ADDRESS ?= 0.0.0.0:9090
SERVER := $(BUILD_DIR)/server/fusion-server

TSAN_BUILD_DIR ?= build-tsan
ASAN_BUILD_DIR ?= build-asan
FUZZ_BUILD_DIR ?= build-fuzz
# Seconds each fuzz target runs in `make test-fuzz` (docs/memory-safety.md
# tells how to run longer sessions).
FUZZ_SECONDS ?= 20
# Sanitizer builds: -O1 with line tables (-g1) gives reports with file:line
# at about half the compile time of RelWithDebInfo's -O2 -g.
SANITIZER_BUILD := -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG"
FUZZ_TARGETS := tokenizer_fuzzer score_request_fuzzer model_infer_fuzzer \
  http_infer_fuzzer model_config_fuzzer

# ccache keys on paths relative to the checkout, so a fresh clone (CI) hits
# the objects an earlier clone compiled.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: deps configure build serve test test-cpp test-tsan test-asan test-fuzz \
  test-python model format format-check clean

deps:
	@./scripts/install-deps.sh

$(BUILD_DIR)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

configure: $(BUILD_DIR)/CMakeCache.txt

build: deps configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

serve: build
	$(SERVER) --model_repository=models --model=fusion \
	  --grpc_address=$(GRPC_ADDRESS) --http_address=$(HTTP_ADDRESS)

# Runs every suite even when one fails, so every count is reported, and
# prints each suite's wall time (CI must stay under 40 minutes in all).
TEST_SUITES := format-check test-cpp test-tsan test-asan test-fuzz test-python
test: build
	@status=0; \
	for suite in $(TEST_SUITES); do \
	  start=$$(date +%s); \
	  $(MAKE) --no-print-directory $$suite || status=1; \
	  echo "make test: $$suite took $$(( $$(date +%s) - start )) s"; \
	done; \
	exit $$status

test-cpp:
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# The tests labelled tsan (every concurrent component over FakeModelRuntime;
# no Torch) under ThreadSanitizer. Abseil's Mutex and Notification are made
# visible to it by sanitizers/tsan_absl.cc; suppressions in sanitizers/tsan.supp.
# scoring_service_test is left out: gRPC, not instrumented, orders its
# callbacks in ways TSan cannot see (docs/memory-safety.md).
TSAN_TARGETS := batching_test forward_stage_test wordpiece_tokenizer_test \
  servable_test model_registry_test http_routes_test \
  ui_routes_test score_request_fuzzer model_infer_fuzzer http_infer_fuzzer \
  tsan_absl_test tsan_detects_race
test-tsan: deps
	cmake -S . -B $(TSAN_BUILD_DIR) $(SANITIZER_BUILD) -DFUSION_WITH_TORCH=OFF \
	  -DFUSION_SANITIZE=thread > /dev/null
	cmake --build $(TSAN_BUILD_DIR) -j $(JOBS) --target $(TSAN_TARGETS)
	cd $(TSAN_BUILD_DIR) && \
	  TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/sanitizers/tsan.supp" \
	  ctest -L tsan --output-on-failure -j $(JOBS)

# Every C++ test and the server under AddressSanitizer + UndefinedBehavior-
# Sanitizer (+ LeakSanitizer); any report from any process fails. Then, once
# against that server: tests/e2e (every native RPC, bad input, streams,
# SIGTERM) and, of tests/integration, test_v2_grpc + test_v2_http (the v2
# parsers) and test_lifecycle (drain in flight); not test_model_repository,
# whose many loads take minutes under ASan (model_registry_test covers its
# lifetimes). The other suites time throughput or restart the
# server over flags: slow under ASan and no new code path
# (sanitizers/run_asan_tests.sh, docs/memory-safety.md).
test-asan: deps
	cmake -S . -B $(ASAN_BUILD_DIR) $(SANITIZER_BUILD) \
	  -DFUSION_SANITIZE=address,undefined > /dev/null
	cmake --build $(ASAN_BUILD_DIR) -j $(JOBS)
	./sanitizers/run_asan_tests.sh $(ASAN_BUILD_DIR)

# The libFuzzer targets (clang, ASan + UBSan, no Torch), FUZZ_SECONDS each.
test-fuzz: deps
	cmake -S . -B $(FUZZ_BUILD_DIR) $(SANITIZER_BUILD) \
	  -DCMAKE_CXX_COMPILER=clang++-14 -DFUSION_WITH_TORCH=OFF \
	  -DFUSION_SANITIZE=address,undefined -DFUSION_FUZZ=ON > /dev/null
	cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target $(FUZZ_TARGETS)
	./tests/fuzz/run_fuzzers.sh $(FUZZ_BUILD_DIR) $(FUZZ_SECONDS)

test-python:
	FUSION_SERVER_BIN=$(abspath $(SERVER)) $(PYTHON) -m pytest tests -q --durations=15

# Regenerates the committed bundle models/fusion/1 (data, vocab, training,
# export); deterministic.
model: deps
	$(PYTHON) -m model.build_bundle

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

# Every C++ file as clang-format (.clang-format) writes it; `make format` fixes.
format-check: deps
	@bad=$$(for f in $$(git ls-files '*.cc' '*.h'); do \
	  clang-format --dry-run -Werror "$$f" > /dev/null 2>&1 || echo "$$f"; \
	done); \
	if [ -n "$$bad" ]; then \
	  echo "format-check: not clang-formatted (run make format):"; \
	  echo "$$bad"; echo "format-check: 0 passed, 1 failed"; exit 1; \
	fi; echo "format-check: 1 passed, 0 failed"

clean:
	rm -rf $(BUILD_DIR) $(TSAN_BUILD_DIR) $(ASAN_BUILD_DIR) $(FUZZ_BUILD_DIR)
