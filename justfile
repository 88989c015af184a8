# polymm workflows. `just` comes from the dev extra (PyPI rust-just): pip install -e '.[dev]'

set shell := ["bash", "-euo", "pipefail", "-c"]

# list the recipes
default:
    @just --list

# install with every extra the test suite needs
install:
    python -m pip install -q -e '.[dev,classify]'

# lint (ruff), format check, strict type check of core/
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

# format the code
fmt:
    ruff format .
    ruff check --fix .
