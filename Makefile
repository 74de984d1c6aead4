# Convenience front door over CMake presets. `make` builds; `make test` runs the whole suite.
JOBS ?= $(shell nproc)

.PHONY: all quickstart deps build demo walkthrough test test-core test-asan bench clean reports \
	reports-quick swarm swarm-ci fuzz fuzz-ci fuzz-build fuzz-corpus

all: build

# The README's first command: install what is missing, build, run the main job.
quickstart: deps demo

deps:
	./scripts/install-deps.sh

build:
	cmake --preset release
	cmake --build --preset release -j $(JOBS)

# The README's main job: the demo scenario on the SimGrid simulator, then its sweep over the
# forwarding designs and the report (reports/demo/report.html).
demo: build
	./build/release/sim/chatlab run scenarios/demo.toml
	./build/release/sim/chatlab sweep scenarios/demo.toml --out reports/demo --report

# Every experiment's report into reports/NAME/ (sweeps resume: delete reports/NAME/runs to
# rerun one from scratch).
EXPERIMENTS = forwarding groups db-writes presence ids offline failover capacity
reports: build
	for e in $(EXPERIMENTS); do \
	  ./build/release/sim/chatlab sweep scenarios/$$e.toml --out reports/$$e --report || exit 1; \
	done
	./build/release/sim/chatlab plan > reports/capacity/plan.txt

# The quick variants (what CI runs), into out/reports-quick/.
reports-quick: build
	for e in $(EXPERIMENTS); do \
	  ./build/release/sim/chatlab sweep scenarios/$$e.toml --quick --out out/reports-quick/$$e \
	    --report || exit 1; \
	done

# The swarm (docs/swarm.md): 10,000 generated scenarios, each its own mix of designs, topology,
# workload and faults; every run must hold every invariant, and every fault kind and recovery
# path must be reached by some run. A failure leaves out/swarm/failures/seed-K.toml and its
# one-line repro; `chatlab shrink` reduces it.
SWARM_RUNS ?= 10000
SWARM_CI_RUNS ?= 400
swarm: build
	./build/release/sim/chatlab swarm --runs $(SWARM_RUNS) -j $(JOBS) --require-coverage \
	  --out out/swarm

# The small swarm CI runs (SWARM_CI_RUNS seeds, about 2-3 minutes on 2 cores).
swarm-ci: build
	./build/release/sim/chatlab swarm --runs $(SWARM_CI_RUNS) -j $(JOBS) --require-coverage \
	  --out out/swarm-ci

# The narrated in-process walk-through of every feature.
walkthrough: build
	./build/release/examples/chatlab_demo

# The whole test suite (release build).
test: build
	ctest --preset release

# Only the core layer (no runtime at all).
test-core: build
	ctest --preset release -L core

# The same suite under AddressSanitizer and UndefinedBehaviorSanitizer. The property test and
# the simulator's seed sweep run fewer seeds here; the release run covers 1,000 and 200.
test-asan:
	cmake --preset debug-asan
	cmake --build --preset debug-asan -j $(JOBS)
	CHATLAB_PROPERTY_SEEDS=200 CHATLAB_SIM_SEEDS=20 ctest --preset debug-asan

# Coverage-guided fuzzing (libFuzzer, clang): builds the fuzz preset, then runs each target of
# fuzz/ for FUZZ_SECONDS on its seed corpus; new inputs go to out/fuzz/, never into the repository.
# Fails if any target crashes, hangs or leaks. docs/testing.md, "Fuzzing", says more.
FUZZ_SECONDS ?= 60
fuzz-build:
	cmake --preset fuzz
	cmake --build --preset fuzz -j $(JOBS)

fuzz: fuzz-build
	./scripts/fuzz.sh $(FUZZ_SECONDS)

# What CI runs: the same, 20 seconds a target.
fuzz-ci:
	$(MAKE) fuzz FUZZ_SECONDS=20

# Regenerates the generated seeds of fuzz/corpus/ after messages change (fuzz/seed_corpus.cc).
fuzz-corpus:
	cmake --preset fuzz
	cmake --build --preset fuzz --target fuzz_seed_corpus -j $(JOBS)
	./build/fuzz/fuzz/fuzz_seed_corpus fuzz/corpus

bench: build
	cmake --build --preset release --target benchmarks -j $(JOBS)
	for b in build/release/benchmarks/*_bench; do $$b --benchmark_min_time=0.5; done

clean:
	rm -rf build
