import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from app.configfile import ConfigFileError, load_config
from core.config import Config, InventoryConfig

SHIPPED = sorted(Path("configs").glob("*.yaml"))
STRATEGIES = [p for p in SHIPPED if p.name in {"market_maker.yaml", "option_seller.yaml", "risk.yaml"}]


@pytest.mark.parametrize("path", STRATEGIES, ids=lambda p: p.name)
def test_shipped_configs_load_and_default_to_dry_run(path):
    cfg = load_config(path)

    assert cfg.ops.dry_run is True


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("quoting:\n  levls: 3\n", "quoting.levls: unknown key"),
        ("foo: 1\n", "foo: unknown key"),
        (
            "quoting:\n  levels: 5\n  level_sizes_shares: [1, 2, 3, 4, 5]\n",
            "quoting.levels: 5 is not in 2..4",
        ),
        (
            "market_selection:\n  mid_price_band: [0.7, 0.3]\n",
            "market_selection.mid_price_band: lower bound 0.7",
        ),
        (
            "quoting:\n  half_spread_px: 1.5\n  base_size_shares: 5\n",
            "quoting.half_spread_px: expected `int`, got `float`",
        ),
        ("inventory:\n  per_market_ev_cap: -1\n", "inventory.per_market_ev_cap: expected `float` > 0.0"),
        ("quoting:\n  base_size_shares: 5.001\n", "quoting.base_size_shares: 5.001 has more than 2 decimals"),
        ("quoting:\n  level_sizes_shares: [1, 2]\n", "quoting.level_sizes_shares: has 2 sizes for 3 levels"),
        (
            "quoting:\n  volatility:\n    pull_threshold_px: 100\n    resume_threshold_px: 200\n",
            "quoting.volatility.resume_threshold_px: 200 must be below pull_threshold_px 100",
        ),
        (
            "inventory:\n  per_market_ev_cap: 500\n  global_ev_cap: 100\n",
            "inventory.global_ev_cap: 100.0 is below",
        ),
        ("ops:\n  dry_run: maybe\n", "ops.dry_run: expected `bool`, got `str`"),
        ("market_selection:\n  rank_by: income\n", "market_selection.rank_by: invalid enum value 'income'"),
        (
            "market_selection:\n  income:\n    quote_shares: 0\n",
            "market_selection.income.quote_shares: expected `float` > 0.0",
        ),
        (
            "market_selection:\n  income:\n    quote_shares: 10.005\n",
            "market_selection.income.quote_shares: 10.005 has more than 2 decimals",
        ),
        (
            "market_selection:\n  income:\n    holding_hours: -1\n",
            "market_selection.income.holding_hours: expected `float` > 0.0",
        ),
        (
            "market_selection:\n  income:\n    book_candidates: 501\n",
            "market_selection.income.book_candidates: expected `int` <= 500",
        ),
        (
            "market_selection:\n  income:\n    book_candidates: -1\n",
            "market_selection.income.book_candidates: expected `int` >= 0",
        ),
        ("market_selection:\n  income:\n    quote: 5\n", "market_selection.income.quote: unknown key"),
        ("a: [\n", "(syntax):"),
        ("- 1\n", "(top level): expected `object`, got `array`"),
        ("", "(top level): the file is empty"),
    ],
)
def test_config_mistakes_name_file_and_dotted_key(tmp_path, yaml_text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)

    with pytest.raises(ConfigFileError) as err:
        load_config(path)

    assert str(err.value).startswith(f"{path}: {expected}")
    assert "\n" not in str(err.value)


def test_cli_bad_config_exits_2_with_one_line_and_no_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("quoting:\n  levels: 5\n  level_sizes_shares: [1, 2, 3, 4, 5]\n")
    book = "tests/fixtures/polymarket/book_2026-08_captured.json"

    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "quote", "--config", str(path), "--book", book],
        capture_output=True,
        text=True,
        check=False,
    )

    assert proc.returncode == 2
    assert proc.stderr.strip() == f"{path}: quoting.levels: 5 is not in 2..4"
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_inventory_limit_finer_than_a_cent_of_a_share_is_refused():
    with pytest.raises(ValueError, match="inventory_limit_shares"):
        InventoryConfig(inventory_limit_shares=10.001)


def test_event_cap_defaults_to_the_per_market_cap_and_may_not_exceed_the_global_one():
    assert InventoryConfig(per_market_ev_cap=50.0).event_cap == 50.0
    assert InventoryConfig(per_event_ev_cap=200.0).event_cap == 200.0
    with pytest.raises(ValueError, match="per_event_ev_cap"):
        InventoryConfig(per_event_ev_cap=5_000.0)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_a_float_that_is_not_finite_is_refused_even_when_built_in_python(value):
    # The decoder's bounds catch .inf from YAML; __post_init__ also catches it from code.
    with pytest.raises(ValueError, match="is not a finite number"):
        InventoryConfig(inventory_limit_shares=value)


def test_every_config_float_is_bounded_or_checked_finite():
    # A new float field without an upper bound still gets the finite check (Base.__post_init__), and
    # one with a bound refuses .inf by the bound.
    for value in (".inf", "-.inf", ".nan"):
        for text in (
            f"market_selection:\n  min_volume_24h: {value}\n",
            f"quoting:\n  level_sizes_shares: [10, 20, {value}]\n",
            f"inventory:\n  per_event_ev_cap: {value}\n",
        ):
            with pytest.raises(msgspec.ValidationError):
                msgspec.yaml.decode(text, type=Config)


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ("state_dir: ''", "ops.state_dir: must name a file or directory"),
        ("markets_json_path: /", "ops.markets_json_path: '/' names a directory, not a file"),
        ("log_path: logs/", "ops.log_path: 'logs/' names a directory, not a file"),
        ("selected_markets_path: a/..", "ops.selected_markets_path: 'a/..' names a directory, not a file"),
        ('state_dir: "x\\0y"', "ops.state_dir: contains a NUL character"),
        ("selected_markets_max_age_s: 0", "ops.selected_markets_max_age_s: expected `float` > 0.0"),
        ("stale_selection: never", "ops.stale_selection: invalid enum value 'never'"),
        ("log_rotate_mb: 0", "ops.log_rotate_mb: expected `float` >= 0.01"),
        ("log_rotate_mb: .inf", "ops.log_rotate_mb: expected `float` <= 100000.0"),
        ("status_interval_s: -1", "ops.status_interval_s: expected `float` >= 0.0"),
        ("drift_resync_listings: 1", "ops.drift_resync_listings: expected `int` >= 2"),
        ("drift_resync_listings: 2.5", "ops.drift_resync_listings: expected `int | null`, got `float`"),
        ("drift_resync_min_s: .inf", "ops.drift_resync_min_s: expected `float` <= 86400.0"),
        ("drift_resync_min_s: -1", "ops.drift_resync_min_s: expected `float` >= 0.0"),
    ],
)
def test_ops_paths_and_selection_policy_are_checked(tmp_path, ops, expected):
    path = tmp_path / "ops.yaml"
    path.write_text(f"ops:\n  {ops}\n")

    with pytest.raises(ConfigFileError) as err:
        load_config(path)

    assert str(err.value) == f"{path}: {expected}"


def test_a_routed_file_policy_defaults_to_a_day_and_selecting_fresh():
    cfg = load_config("configs/market_maker.yaml")

    assert cfg.ops.selected_markets_max_age_s == 86_400.0
    assert cfg.ops.stale_selection == "select"
