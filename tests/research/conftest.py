"""Runs the research tests share: small simulations made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main

MM = "configs/market_maker.yaml"
TINY = "tests/fixtures/scenarios/tiny.yaml"


def sim(out: Path, *args: str) -> Path:
    assert main(["sim", "--config", MM, "--scenario", TINY, "--out", str(out), "--quiet", *args]) == 0
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny scenario (2 markets, 5 minutes, resolving) with the shipped config; report included."""
    return sim(tmp_path_factory.mktemp("tiny") / "run")


@pytest.fixture(scope="session")
def wide_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped config with one parameter changed: a half-spread of 1.1 cents instead of 1."""
    text = Path(MM).read_text()
    assert "half_spread_px: 100 " in text
    path = tmp_path_factory.mktemp("cfg") / "wide.yaml"
    path.write_text(text.replace("half_spread_px: 100 ", "half_spread_px: 110 "))
    return path


@pytest.fixture(scope="session")
def tiny_wide_run(tmp_path_factory: pytest.TempPathFactory, wide_config: Path) -> Path:
    """The tiny scenario with ``wide_config``: the same input, one parameter apart."""
    out = tmp_path_factory.mktemp("tiny_wide") / "run"
    cfg = str(wide_config)
    assert (
        main(["sim", "--config", cfg, "--scenario", TINY, "--out", str(out), "--quiet", "--no-report"]) == 0
    )
    return out
