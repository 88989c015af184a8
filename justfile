# polymm workflows. `just` comes from the dev extra (PyPI rust-just): pip install -e '.[dev]'

set shell := ["bash", "-euo", "pipefail", "-c"]

# list the recipes
default:
    @just --list

# install with every extra the test suite needs
install:
    python -m pip install -q -e '.[dev,classify]'

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

# longer property runs (hypothesis nightly profile)
nightly:
    HYPOTHESIS_PROFILE=nightly python -m pytest tests/core tests/sim

# one quote decision for a recorded book: just quote tests/fixtures/polymarket/book_2026-08_captured.json
quote BOOK="tests/fixtures/polymarket/book_2026-08_captured.json" CONFIG="configs/market_maker.yaml" *ARGS:
    polymm quote --config {{CONFIG}} --book {{BOOK}} {{ARGS}}

# run a simulation: just sim [SCENARIO] [ENGINE]   (scenarios: configs/scenarios/*.yaml)
sim SCENARIO="default" ENGINE="inline" CONFIG="configs/market_maker.yaml" *ARGS:
    polymm sim --config {{CONFIG}} --scenario {{SCENARIO}} --engine {{ENGINE}} --out runs/{{SCENARIO}} {{ARGS}}

# benchmarks: writes bench/results.json and prints it (several minutes)
bench *ARGS:
    python bench/bench.py {{ARGS}}

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

# refresh the market cache from Gamma, then route it between the strategies
markets *ARGS:
    polymm refresh-markets --config configs/market_maker.yaml {{ARGS}}
    polymm route-markets --source-config configs/market_maker.yaml --market-maker-config configs/market_maker.yaml --market-maker-limit 5 --market-maker-output local_state/market_maker/selected_markets.json --option-seller-config configs/option_seller.yaml --option-seller-limit 10 --option-seller-output local_state/option_seller/selected_markets.json --risk-manager-config configs/risk.yaml --risk-manager-limit 15 --risk-manager-output local_state/risk_manager/selected_markets.json

# format the code
fmt:
    ruff format .
    ruff check --fix .
