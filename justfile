# polymm workflows. `just` comes from the dev extra (PyPI rust-just): pip install -e '.[dev]'

set shell := ["bash", "-euo", "pipefail", "-c"]

# list the recipes
default:
    @just --list

# install with every extra the test suite needs
install:
    python -m pip install -q -e '.[dev,classify,research]'

# lint (ruff), format check, strict type check of every package
lint:
    ruff check .
    ruff format --check .
    mypy

# the whole test suite: lint, types, then pytest (fails when no test is collected)
test: lint
    python -m pytest

# fast feedback: pytest only, stop at the first failure
test-fast *ARGS:
    python -m pytest -x -q {{ARGS}}

# the suite with fresh random hypothesis examples (the default profile is derandomized: same verdict every run)
explore *ARGS:
    HYPOTHESIS_PROFILE=dev python -m pytest {{ARGS}}

# longer property runs (hypothesis nightly profile: random, many more examples)
nightly:
    HYPOTHESIS_PROFILE=nightly python -m pytest tests/core tests/sim

# one quote decision for a recorded book: just quote tests/fixtures/polymarket/book_2026-08_captured.json
quote BOOK="tests/fixtures/polymarket/book_2026-08_captured.json" CONFIG="configs/market_maker.yaml" *ARGS:
    polymm quote --config {{CONFIG}} --book {{BOOK}} {{ARGS}}

# run a simulation: just sim [SCENARIO] [ENGINE]   (scenarios: configs/scenarios/*.yaml)
sim SCENARIO="default" ENGINE="inline" CONFIG="configs/market_maker.yaml" *ARGS:
    polymm sim --config {{CONFIG}} --scenario {{SCENARIO}} --engine {{ENGINE}} --out runs/{{SCENARIO}} {{ARGS}}

# record the market channel for DURATION s into OUT: the markets CONFIG would quote (production by default;
# ARGS: --ws-url URL --gamma-url URL for another venue). `polymm record --markets ID...` picks them by hand
record OUT="runs/rec" DURATION="60" CONFIG="configs/market_maker.yaml" *ARGS:
    polymm record --config {{CONFIG}} --duration {{DURATION}} --out {{OUT}} {{ARGS}}

# offline: start the exchange emulator on PORT, record its five markets (V1 and V2) for DURATION s into OUT, stop it
record-emulator OUT="runs/rec-emulator" DURATION="30" PORT="8089":
    #!/usr/bin/env bash
    set -euo pipefail
    export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
    polymm emulator --port {{PORT}} > /dev/null 2>&1 &
    emu=$!
    trap 'kill $emu 2> /dev/null || true' EXIT
    for _ in $(seq 100); do
        python -c "import httpx; httpx.get('http://127.0.0.1:{{PORT}}/ok', timeout=1).raise_for_status()" 2> /dev/null && break
        sleep 0.2
    done
    polymm record --markets will-it-rain-in-lisbon-tomorrow emulated-election-winner emulated-fed-rate-cut \
        emulated-v2-city-marathon-record emulated-v2-tech-launch-date \
        --ws-url ws://127.0.0.1:{{PORT}}/ws/market --gamma-url http://127.0.0.1:{{PORT}}/gamma \
        --duration {{DURATION}} --out {{OUT}}

# replay a recording (no scenario file): the simulator on it; ARGS --dry-run: as the dry-run or paper session that ran it
replay REC="runs/rec" OUT="runs/replay" CONFIG="configs/market_maker.yaml" *ARGS:
    polymm sim --config {{CONFIG}} --replay {{REC}} --out {{OUT}} {{ARGS}}

# the shipped scenarios against their stored baselines (tests/baselines/): exits 1 on any difference
regress OUT="runs/regress" CONFIG="configs/market_maker.yaml":
    #!/usr/bin/env bash
    set -euo pipefail
    fail=0
    for f in configs/scenarios/*.yaml; do
        s=$(basename "$f" .yaml)
        polymm sim --config {{CONFIG}} --scenario "$s" --out "{{OUT}}/$s" --quiet --no-report > /dev/null
        echo "== regress $s"
        polymm diff "tests/baselines/$s" "{{OUT}}/$s" || fail=1
    done
    if [ "$fail" = 0 ]; then echo "regress: every scenario matches its baseline"; else echo "regress: FAILED (just regress-diff SCENARIO shows the first divergent decision)"; fi
    exit "$fail"

# refresh the stored baselines after an intended change (commit tests/baselines/ with the change)
regress-update OUT="runs/regress" CONFIG="configs/market_maker.yaml":
    #!/usr/bin/env bash
    set -euo pipefail
    for f in configs/scenarios/*.yaml; do
        s=$(basename "$f" .yaml)
        polymm sim --config {{CONFIG}} --scenario "$s" --out "{{OUT}}/$s" --quiet --no-report > /dev/null
        python -m research.diff --write-baseline "{{OUT}}/$s" "tests/baselines/$s"
    done

# the first divergent decision of SCENARIO between the code at REF (default: the last commit) and the work tree
regress-diff SCENARIO="default" REF="HEAD" CONFIG="configs/market_maker.yaml":
    #!/usr/bin/env bash
    set -euo pipefail
    base=$(mktemp -d)
    trap 'git worktree remove --force "$base/src" > /dev/null 2>&1 || true; rm -rf "$base"' EXIT
    git worktree add --detach "$base/src" {{REF}} > /dev/null
    (cd "$base/src" && PYTHONPATH="$base/src" python -m app.cli sim --config {{CONFIG}} --scenario {{SCENARIO}} --out "$base/run" --quiet --no-report > /dev/null)
    polymm sim --config {{CONFIG}} --scenario {{SCENARIO}} --out runs/regress/{{SCENARIO}} --quiet --no-report > /dev/null
    polymm diff "$base/run" runs/regress/{{SCENARIO}}

# compare two runs: the first divergent decision with both sides' reasons, then the figures (exit 1: they differ)
diff RUN_A RUN_B:
    polymm diff {{RUN_A}} {{RUN_B}}

# write RUN_DIR/report.html (polymm sim writes it by default)
report RUN_DIR="runs/default":
    polymm report {{RUN_DIR}}

# a parameter sweep: just sweep configs/sweeps/spread_skew.yaml [--trials N --workers N | --ray ADDRESS]
sweep SPACE="configs/sweeps/spread_skew.yaml" CONFIG="configs/market_maker.yaml" SCENARIO="default" *ARGS:
    polymm sweep --config {{CONFIG}} --scenario {{SCENARIO}} --space {{SPACE}} --out runs/sweep/$(basename {{SPACE}} .yaml) {{ARGS}}

# benchmarks: writes bench/out/results.json (git-ignored) and prints it (several minutes); --only w1m, --peer-python ENV/bin/python, --out FILE
bench *ARGS:
    python bench/bench.py {{ARGS}}

# callgrind instructions per quote window (decode to orders handed over; median of the windows): compare trees by it
quote-window *ARGS:
    python bench/quote_window.py {{ARGS}}

# optional: compile the simulator's hot modules with mypyc in place (~1 min; mypy from the dev or fast extra, a C compiler); same results, faster
build-fast:
    python bench/fast.py build

# back to pure Python, the reference CI tests: remove what build-fast wrote
clean-fast:
    python bench/fast.py clean

# the compiled build's own check (CI tests pure Python only): build, run the suites of the compiled modules on it, back to pure
test-compiled:
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'python bench/fast.py clean > /dev/null' EXIT
    python bench/fast.py build
    python -m pytest tests/core tests/sim tests/venue tests/actors tests/adapters tests/test_fast_build.py

# issue #13's figures (just bench's keys) for pure and compiled, taking turns (needs build-fast): bench/out/fast.json
bench-fast REPEAT="5" *ARGS:
    python bench/fast.py compare --repeat {{REPEAT}} {{ARGS}}

# the exchange emulator on 127.0.0.1 (REST + WebSocket + Gamma), until Ctrl-C
emulator PORT="8080" SCENARIO="default":
    polymm emulator --port {{PORT}} --scenario {{SCENARIO}}

# live trading against the local emulator for 60 s, then check it left no open order
demo-live DURATION="60":
    polymm demo-live --duration {{DURATION}}

# paper trading on a live feed (default: production Polymarket) - posts nothing
paper DURATION="300" CONFIG="configs/market_maker.yaml" *ARGS:
    polymm run-market-maker --config {{CONFIG}} --mode paper --duration {{DURATION}} {{ARGS}}

# dry-run: decide and log every decision with its reasons, send nothing
dry-run DURATION="300" CONFIG="configs/market_maker.yaml" *ARGS:
    polymm run-market-maker --config {{CONFIG}} --mode dry-run --duration {{DURATION}} {{ARGS}}

# refresh the market cache from Gamma (configs/markets.yaml: enough for every route), then route it
markets *ARGS:
    polymm refresh-markets --config configs/markets.yaml {{ARGS}}
    polymm route-markets --source-config configs/market_maker.yaml --market-maker-config configs/market_maker.yaml --market-maker-limit 5 --market-maker-output local_state/market_maker/selected_markets.json --option-seller-config configs/option_seller.yaml --option-seller-limit 10 --option-seller-output local_state/option_seller/selected_markets.json --risk-manager-config configs/risk.yaml --risk-manager-limit 15 --risk-manager-output local_state/risk_manager/selected_markets.json

# format the code
fmt:
    ruff format .
    ruff check --fix .
