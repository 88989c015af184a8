"""Bad config input through every command that takes a config: one line and exit 2, never a traceback.

The shipped ``configs/market_maker.yaml`` is mutated (``.inf``/``.nan``/huge values, wrong types,
missing sections, unknown keys, empty or binary files, deep nesting, YAML alias bombs) and run through
``quote``, ``sim``, ``refresh-markets``, ``route-markets`` and ``run-market-maker``. A mutation that
is still a valid config runs to the end (exit 0) in each. A hypothesis test draws more mutations and
asserts only "exit 2 with one line, or success".
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli import main
from emulator import Emulator
from tests.gamma_server import GammaServer

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

SHIPPED = Path("configs/market_maker.yaml")
BASE: dict[str, Any] = yaml.safe_load(SHIPPED.read_text())
BOOK = "tests/fixtures/polymarket/book_2026-08_captured.json"
TINY_SCENARIO = "tests/fixtures/scenarios/tiny.yaml"
AS_OF = "2026-03-12T09:00:00Z"  # when the Gamma fixtures' markets were open

_MARK = "@@VALUE@@"


def mutate(path: str, literal: str, base: dict[str, Any] | None = None) -> str:
    """The shipped config with the value at dotted ``path`` replaced by the YAML ``literal``."""
    doc = yaml.safe_load(yaml.safe_dump(base if base is not None else BASE))
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[key]
    node[last] = _MARK
    return yaml.safe_dump(doc, sort_keys=False).replace(f"'{_MARK}'", literal)


def without(section: str) -> str:
    doc = dict(BASE)
    del doc[section]
    return yaml.safe_dump(doc, sort_keys=False)


def with_unknown(section: str) -> str:
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    doc[section]["bogus_key"] = 1
    return yaml.safe_dump(doc, sort_keys=False)


_BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['x'] * 9)}]\n"
    for prev, name in zip([None, "a", "b", "c", "d", "e", "f", "g"], "abcdefgh", strict=True)
)


def V(case: str, path: str, literal: str, expected: str) -> Any:
    """A bad value at ``path``."""
    return pytest.param(mutate(path, literal), expected, id=case)


def F(case: str, text: str | bytes, expected: str) -> Any:
    """A bad file."""
    return pytest.param(text, expected, id=case)


# V(id, dotted key, YAML value, expected) and F(id, file, expected): the one line after "FILE: ".
BAD: list[Any] = [
    # .inf / -.inf / .nan in floats: the three tracebacks of the fuzz and their neighbours.
    V(
        "sizes-inf",
        "quoting.level_sizes_shares",
        "[.inf, 20, 40]",
        "quoting.level_sizes_shares[0]: expected `float` <= 1000000000.0",
    ),
    V(
        "global-cap-inf",
        "inventory.global_ev_cap",
        ".inf",
        "inventory.global_ev_cap: expected `float` <= 1000000000.0",
    ),
    V(
        "inventory-limit-inf",
        "inventory.inventory_limit_shares",
        ".inf",
        "inventory.inventory_limit_shares: expected `float` <= 1000000000.0",
    ),
    V(
        "per-market-cap-nan",
        "inventory.per_market_ev_cap",
        ".nan",
        "inventory.per_market_ev_cap: expected `float` > 0.0",
    ),
    V(
        "per-market-cap-neg-inf",
        "inventory.per_market_ev_cap",
        "-.inf",
        "inventory.per_market_ev_cap: expected `float` > 0.0",
    ),
    V(
        "min-flow-inf",
        "quoting.flow.min_flow_shares",
        ".inf",
        "quoting.flow.min_flow_shares: expected `float` <= 1000000000.0",
    ),
    V(
        "widen-per-px-inf",
        "quoting.volatility.widen_per_px",
        ".inf",
        "quoting.volatility.widen_per_px: expected `float` <= 100",
    ),
    V(
        "vol-halflife-inf",
        "quoting.volatility.halflife_s",
        ".inf",
        "quoting.volatility.halflife_s: expected `float` <= 604800.0",
    ),
    V(
        "flow-halflife-nan",
        "quoting.flow.halflife_s",
        ".nan",
        "quoting.flow.halflife_s: expected `float` > 0.0",
    ),
    V(
        "hours-to-end-1e300",
        "market_selection.min_hours_to_end",
        "1.0e+300",
        "market_selection.min_hours_to_end: expected `float` <= 876600.0",
    ),
    V(
        "hours-to-end-inf",
        "market_selection.min_hours_to_end",
        ".inf",
        "market_selection.min_hours_to_end: expected `float` <= 876600.0",
    ),
    V(
        "volume-inf",
        "market_selection.min_volume_24h",
        ".inf",
        "market_selection.min_volume_24h: expected `float` <= 1000000000000.0",
    ),
    V(
        "liquidity-nan",
        "market_selection.min_liquidity",
        ".nan",
        "market_selection.min_liquidity: expected `float` >= 0.0",
    ),
    V(
        "band-inf",
        "market_selection.mid_price_band",
        "[0.1, .inf]",
        "market_selection.mid_price_band[1]: expected `float` <= 1.0",
    ),
    V(
        "spread-cents-nan",
        "market_selection.max_spread_cents",
        ".nan",
        "market_selection.max_spread_cents: expected `float` > 0.0",
    ),
    V(
        "qty-tolerance-inf",
        "quoting.requote_qty_tolerance_pct",
        ".inf",
        "quoting.requote_qty_tolerance_pct: expected `float` <= 100.0",
    ),
    V(
        "one-sided-inf",
        "quoting.flow.one_sided_threshold",
        ".inf",
        "quoting.flow.one_sided_threshold: expected `float` < 1.0",
    ),
    # Accepted before, though no real config has them (huge ints, prices above 1 USDC).
    V(
        "half-spread-huge",
        "quoting.half_spread_px",
        "1000000000000000000000000000000",
        "quoting.half_spread_px: expected `int` <= 10000",
    ),
    V(
        "book-age-huge",
        "quoting.max_book_age_ms",
        "4611686018427387904",
        "quoting.max_book_age_ms: expected `int` <= 86400000",
    ),
    V(
        "pull-threshold-huge",
        "quoting.volatility.pull_threshold_px",
        "99999999",
        "quoting.volatility.pull_threshold_px: expected `int` <= 10000",
    ),
    V(
        "widen-threshold-huge",
        "quoting.volatility.widen_threshold_px",
        "20000",
        "quoting.volatility.widen_threshold_px: expected `int` <= 10000",
    ),
    V(
        "sizes-huge",
        "quoting.level_sizes_shares",
        "[10, 20, 1.0e+12]",
        "quoting.level_sizes_shares[2]: expected `float` <= 1000000000.0",
    ),
    V(
        "global-cap-huge",
        "inventory.global_ev_cap",
        "1.0e+300",
        "inventory.global_ev_cap: expected `float` <= 1000000000.0",
    ),
    # Negatives.
    V("levels-negative", "quoting.levels", "-1", "quoting.levels: -1 is not in 2..4"),
    V("limit-negative", "market_selection.limit", "-5", "market_selection.limit: expected `int` >= 1"),
    V(
        "half-spread-negative",
        "quoting.half_spread_px",
        "-100",
        "quoting.half_spread_px: expected `int` >= 0",
    ),
    V(
        "sizes-negative",
        "quoting.level_sizes_shares",
        "[-10, 20, 40]",
        "quoting.level_sizes_shares[0]: expected `float` > 0.0",
    ),
    V(
        "cap-negative",
        "inventory.per_market_ev_cap",
        "-1",
        "inventory.per_market_ev_cap: expected `float` > 0.0",
    ),
    # Wrong types.
    V("levels-string", "quoting.levels", "three", "quoting.levels: expected `int`, got `str`"),
    V("levels-float", "quoting.levels", "3.5", "quoting.levels: expected `int`, got `float`"),
    V(
        "sizes-scalar",
        "quoting.level_sizes_shares",
        "10",
        "quoting.level_sizes_shares: expected `array | null`, got `int`",
    ),
    V(
        "sizes-nested",
        "quoting.level_sizes_shares",
        "[[10], 20, 40]",
        "quoting.level_sizes_shares[0]: expected `float`, got `array`",
    ),
    V("dry-run-string", "ops.dry_run", "maybe", "ops.dry_run: expected `bool`, got `str`"),
    V("fair-price-int", "quoting.fair_price", "123", "quoting.fair_price: expected `str`, got `int`"),
    V(
        "fair-price-unknown",
        "quoting.fair_price",
        "median",
        "quoting.fair_price: invalid enum value 'median'",
    ),
    V(
        "tags-map",
        "market_selection.exclude_tags",
        "{a: 1}",
        "market_selection.exclude_tags: expected `array`, got `object`",
    ),
    V("quoting-list", "quoting", "[1, 2]", "quoting: expected `object`, got `array`"),
    V("strategy-null", "strategy", "null", "strategy: expected `str`, got `null`"),
    V(
        "stale-selection-unknown",
        "ops.stale_selection",
        "later",
        "ops.stale_selection: invalid enum value 'later'",
    ),
    # Paths that cannot be a file or a directory.
    V("state-dir-empty", "ops.state_dir", '""', "ops.state_dir: must name a file or directory"),
    V(
        "cache-path-root",
        "ops.markets_json_path",
        '"/"',
        "ops.markets_json_path: '/' names a directory, not a file",
    ),
    V(
        "selected-path-dot",
        "ops.selected_markets_path",
        '"."',
        "ops.selected_markets_path: '.' names a directory, not a file",
    ),
    V("path-nul", "ops.state_dir", '"a\\0b"', "ops.state_dir: contains a NUL character"),
    # Unknown keys, at every level.
    F("unknown-top", yaml.safe_dump({**BASE, "bogus_key": 1}), "bogus_key: unknown key"),
    F("unknown-quoting", with_unknown("quoting"), "quoting.bogus_key: unknown key"),
    F("unknown-inventory", with_unknown("inventory"), "inventory.bogus_key: unknown key"),
    F("unknown-ops", with_unknown("ops"), "ops.bogus_key: unknown key"),
    F("unknown-selection", with_unknown("market_selection"), "market_selection.bogus_key: unknown key"),
    # Whole files.
    F("empty", "", "(top level): the file is empty"),
    F("blank", "\n  \n", "(top level): the file is empty"),
    F(
        "binary",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
        "(syntax): unacceptable character",
    ),
    F("list-top", "- 1\n- 2\n", "(top level): expected `object`, got `array`"),
    F("scalar-top", "42\n", "(top level): expected `object`, got `int`"),
    F("syntax", "quoting: [\n", "(syntax):"),
    F(
        "python-tag",
        "!!python/object/apply:os.system ['echo hi']\n",
        "(syntax): could not determine a constructor",
    ),
    F(
        "deep-flow",
        "quoting: " + "[" * 50_000 + "]" * 50_000 + "\n",
        "(syntax): nested deeper than 32 levels",
    ),
    F(
        "deep-block",
        "".join("  " * i + f"k{i}:\n" for i in range(40)) + "  " * 40 + "x: 1\n",
        "(syntax): nested deeper than 32 levels",
    ),
    F(
        "alias-bomb",
        _BOMB + "i: [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n" * 5,
        "(syntax): more than 100 YAML aliases",
    ),
    F("alias-bomb-small", _BOMB, "a: unknown key"),
    F("huge-file", "# " + "x" * 1_100_000 + "\n", "(file): 1,100,003 bytes; a config is at most 1,000,000"),
]

# Still valid configs (odd but meaningful): every command runs them to the end.
GOOD: list[tuple[str, str]] = [
    ("no-quoting-section", without("quoting")),
    ("no-selection-section", without("market_selection")),
    ("no-ops-section", without("ops")),
    ("huge-min-volume", mutate("market_selection.min_volume_24h", "1.0e+11")),
    ("far-end-date", mutate("market_selection.min_hours_to_end", "876000")),
]

COMMANDS = ("quote", "sim", "refresh-markets", "route-markets", "run-market-maker")


class World:
    """A Gamma, an emulator and a market cache, shared by the module's tests."""

    def __init__(self, root: Path, gamma: GammaServer, emu: Emulator) -> None:
        self.root, self.gamma, self.emu = root, gamma, emu
        self.cache = root / "cache.json"
        self._n = 0

    def fresh(self) -> Path:
        self._n += 1
        d = self.root / f"case{self._n}"
        d.mkdir()
        return d

    def argv(self, command: str, cfg: Path, out: Path) -> list[str]:
        match command:
            case "quote":
                return ["quote", "--config", str(cfg), "--book", BOOK]
            case "sim":
                return [
                    "sim",
                    "--config",
                    str(cfg),
                    "--scenario",
                    TINY_SCENARIO,
                    "--out",
                    str(out / "sim"),
                    "--quiet",
                ]
            case "refresh-markets":
                return [
                    "refresh-markets",
                    "--config",
                    str(cfg),
                    "--skip-classify",
                    "--skip-index",
                    "--gamma-url",
                    self.gamma.url,
                    "--gamma-retries",
                    "0",
                    "--as-of",
                    AS_OF,
                    "--markets-json-path",
                    str(out / "cache.json"),
                ]
            case "route-markets":
                return [
                    "route-markets",
                    "--source-config",
                    str(cfg),
                    "--markets-json-path",
                    str(self.cache),
                    "--market-maker-config",
                    str(cfg),
                    "--market-maker-output",
                    str(out / "selected.json"),
                    "--as-of",
                    AS_OF,
                ]
            case _:
                return ["run-market-maker", "--config", str(cfg), "--duration", "0", "--state-dir", str(out),
                        "--clob-url", self.emu.clob_url, "--ws-url", self.emu.ws_market_url,
                        "--gamma-url", self.emu.gamma_url]  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("fuzz")
    with GammaServer() as gamma, Emulator("default", seed=1, port=0) as emu:
        w = World(root, gamma, emu)
        cfg = root / "shipped.yaml"
        cfg.write_text(localised(SHIPPED.read_text(), root))
        assert main(w.argv("refresh-markets", cfg, root)) == 0
        assert w.cache.exists()
        yield w


def localised(text: str, root: Path) -> str:
    # Any state the config names goes under the test's directory.
    return text.replace("local_state/", f"{root}/local_state/")


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("text", "expected"), BAD)
def test_a_bad_config_is_one_line_and_exit_2_in_every_command(world, capsys, command, text, expected):
    out_dir = world.fresh()
    cfg = out_dir / "bad.yaml"
    cfg.write_bytes(localised(text, out_dir).encode() if isinstance(text, str) else text)

    code, out, err = run_cli(world.argv(command, cfg, out_dir), capsys)

    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{cfg}: {expected}"), lines[0]
    assert "Traceback" not in err + out


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("text", [pytest.param(t, id=i) for i, t in GOOD])
def test_an_odd_but_valid_config_runs_in_every_command(world, capsys, command, text):
    out_dir = world.fresh()
    cfg = out_dir / "odd.yaml"
    cfg.write_text(localised(text, out_dir))

    code, out, err = run_cli(world.argv(command, cfg, out_dir), capsys)

    assert code == 0, (out, err)
    assert "Traceback" not in err + out


# --- hypothesis: any mutation of any value is either refused with one line, or works --------------------


def _leaves(node: Any, prefix: str = "") -> list[str]:
    if not isinstance(node, dict):
        return [prefix]
    return [leaf for key, value in node.items() for leaf in _leaves(value, f"{prefix}{key}.")]


# Every value but the ops paths (a mutant must not write outside the test's directory).
_LEAVES = [path.rstrip(".") for path in _leaves(BASE) if not path.startswith("ops.") and path != "strategy."]


def _yaml_float(f: float) -> str:
    # PyYAML reads 1e+20 as a string: a YAML 1.1 float needs a dot.
    text = repr(f)
    return text.replace("e", ".0e", 1) if "e" in text and "." not in text else text


_SCALARS = st.one_of(
    st.sampled_from([".inf", "-.inf", ".nan", "null", "true", "''", "[]", "{}", "0", "-0.0", "1.0e+308"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(_yaml_float),
    st.text(alphabet=st.characters(codec="ascii", exclude_characters="\0'\"\\"), max_size=12).map(repr),
)
_VALUES = st.one_of(_SCALARS, st.lists(_SCALARS, max_size=5).map(lambda xs: "[" + ", ".join(xs) + "]"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(st.tuples(st.sampled_from(_LEAVES), _VALUES), min_size=1, max_size=3))
def test_any_mutation_is_refused_with_one_line_or_runs(world, capsys, changes):
    text = yaml.safe_dump(BASE, sort_keys=False)
    for path, literal in changes:
        text = mutate(path, literal, yaml.safe_load(text))
    with tempfile.TemporaryDirectory(dir=world.root) as d:
        cfg = Path(d) / "mutant.yaml"
        cfg.write_text(text)
        for command in ("quote", "route-markets"):
            code, out, err = run_cli(world.argv(command, cfg, Path(d)), capsys)

            assert "Traceback" not in err + out
            if code != 0:
                assert code == 2, (command, text, out, err)
                assert len(err.strip().splitlines()) == 1, (command, err)
                assert err.startswith(f"{cfg}: "), err
