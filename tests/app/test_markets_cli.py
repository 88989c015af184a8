"""``polymm refresh-markets``, ``route-markets`` and ``markets search`` against a loopback Gamma."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.classify import classify_extra_available
from adapters.market_cache import load_market_cache, load_selected_markets
from app.cli import main
from app.commands.markets import UNREACHABLE_IN_A_ROW, Progress, discover_markets
from app.configfile import load_config
from core.units import QTY_ONE
from emulator import Emulator
from emulator.scenario import FlowConfig, InitialBook, MarketConfig, Scenario
from tests.gamma_server import GammaServer, malformed_markets

REPO = Path(__file__).resolve().parents[2]
AS_OF = "2026-03-12T09:00:00Z"  # when the fixture's BTC 5-minute market was still open


def parse_iso_ns(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()) * 1_000_000_000


requires_extra = pytest.mark.skipif(
    not classify_extra_available() and not os.environ.get("CI"),
    reason="the classify extra is not installed: pip install -e '.[classify]'",
)

ROUTE_AS_WRITTEN = [
    "route-markets",
    "--source-config",
    "configs/market_maker.yaml",
    "--market-maker-config",
    "configs/market_maker.yaml",
    "--market-maker-limit",
    "5",
    "--market-maker-output",
    "local_state/market_maker/selected_markets.json",
    "--option-seller-config",
    "configs/option_seller.yaml",
    "--option-seller-limit",
    "10",
    "--option-seller-output",
    "local_state/option_seller/selected_markets.json",
    "--risk-manager-config",
    "configs/risk.yaml",
    "--risk-manager-limit",
    "15",
    "--risk-manager-output",
    "local_state/risk_manager/selected_markets.json",
]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch directory with the shipped configs, as the current directory."""
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def gamma() -> Iterator[GammaServer]:
    with GammaServer() as s:
        yield s


@pytest.fixture
def no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connection or name lookup that is not for the loopback address (Unix sockets pass)."""
    real = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1"):
            raise AssertionError(f"network access to {address!r} during an offline test")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    real_lookup = socket.getaddrinfo

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", "::1", "localhost", None):
            raise AssertionError(f"name lookup of {host!r} during an offline test")
        return real_lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)


def write_config(path: Path, selection: str, ops: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"market_selection:\n{selection}\nops:\n{ops or '  dry_run: true'}\n")
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


# --- the acceptance commands, as written --------------------------------------------------------------------


@pytest.mark.usefixtures("workdir")
def test_acceptance_refresh_then_route_as_written(
    gamma: GammaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = run(
        [
            "refresh-markets",
            "--config",
            "configs/market_maker.yaml",
            "--limit",
            "20",
            "--fetch-limit",
            "50",
            "--skip-classify",
            "--gamma-url",
            gamma.url,
        ],
        capsys,
    )
    assert rc == 0, err
    cache = load_market_cache("local_state/markets.json")
    assert cache.kind == "market_cache"
    assert len(cache.markets) <= 20
    assert gamma.paths("/markets")[0]["limit"] == ["50"]
    assert "wrote" in out

    rc, out, err = run(ROUTE_AS_WRITTEN, capsys)

    assert rc == 0, err
    mm = load_selected_markets("local_state/market_maker/selected_markets.json")
    os_ = load_selected_markets("local_state/option_seller/selected_markets.json")
    rm = load_selected_markets("local_state/risk_manager/selected_markets.json")
    assert len(mm) <= 5
    assert len(os_) <= 10
    assert len(rm) <= 15
    assert not {m.condition_id for m in mm} & {m.condition_id for m in os_}
    assert {m.condition_id for m in mm + os_} <= {m.condition_id for m in rm}
    assert {m.condition_id for m in rm} <= {m.market.condition_id for m in cache.markets}
    assert "risk_manager" in out


@pytest.mark.usefixtures("workdir")
def test_route_as_of_fixture_date_gives_every_strategy_its_markets(
    gamma: GammaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["refresh-markets", "--config", "configs/market_maker.yaml", "--skip-classify", "--skip-index",
                "--gamma-url", gamma.url, "--as-of", AS_OF], capsys)[0] == 0  # fmt: skip
    loose = "  min_hours_to_end: 0\n  min_volume_24h: 0\n  min_liquidity: 0\n  max_spread_cents: 2\n"
    write_config(Path("mm.yaml"), loose + "  mid_price_band: [0.10, 0.90]")
    write_config(Path("os.yaml"), loose + "  mid_price_band: [0.01, 0.99]")

    rc, out, err = run(
        ["route-markets", "--markets-json-path", "local_state/markets.json",
         "--market-maker-config", "mm.yaml", "--market-maker-limit", "5", "--market-maker-output", "mm.json",
         "--option-seller-config", "os.yaml", "--option-seller-output", "os.json",
         "--risk-manager-config", "configs/risk.yaml", "--risk-manager-output", "rm.json", "--as-of", AS_OF],
        capsys,
    )  # fmt: skip

    assert rc == 0, err
    cached = [m.market_id for m in load_market_cache("local_state/markets.json").records()]
    # Open at 09:00 on 2026-03-12, by 24h volume: SAS, Whitmer, Newsom, BTC 5m, BTC TWAP (no quote).
    assert cached == ["559657", "559659", "559652", "1557558", "3763487"]
    # Snake draft: MM takes Newsom (its best), OS Stephen A. Smith (its best), OS again Whitmer, then MM
    # the BTC market; the two low-priced nominees are outside the market maker's band anyway.
    assert [m.market_id for m in load_selected_markets("mm.json")] == ["559652", "1557558"]
    assert [m.market_id for m in load_selected_markets("os.json")] == ["559657", "559659"]
    assert sorted(m.market_id for m in load_selected_markets("rm.json")) == [
        "1557558",
        "559652",
        "559657",
        "559659",
    ]
    assert "no_two_sided_quote 1" in out
    summary = json.loads(Path("mm.json").read_text())["summary"]
    assert summary["filtered_out"] == {"no_two_sided_quote": 1, "mid_outside_band": 2}


# --- refresh-markets ----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("workdir")
def test_refresh_skips_malformed_records_and_reports_them(
    gamma: GammaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    gamma.markets = [*malformed_markets(), *gamma.markets]

    rc, out, _ = run(
        ["refresh-markets", "--config", "configs/risk.yaml", "--skip-classify", "--skip-index",
         "--gamma-url", gamma.url, "--as-of", AS_OF],
        capsys,
    )  # fmt: skip

    assert rc == 0
    assert "7 malformed skipped" in out
    assert "skipped market 900003 (offset" in out
    summary = json.loads(Path("local_state/markets.json").read_text())["summary"]
    assert len(summary["malformed"]) == 7


@pytest.mark.usefixtures("workdir")
def test_refresh_ranks_by_expected_income_and_prints_every_term(
    gamma: GammaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # The real ceasefire market (a 30 USDC/day pool, no liquidity served) as if it were still open.
    ceasefire = next(m for m in gamma.markets if str(m.get("id")) == "1812085")
    ceasefire["closed"] = False
    write_config(Path("income.yaml"), "  rank_by: expected_income\n  income:\n    quote_shares: 100")

    rc, out, err = run(
        ["refresh-markets", "--config", "income.yaml", "--skip-classify", "--skip-index",
         "--gamma-url", gamma.url, "--as-of", AS_OF, "--top", "3", "--skip-books"],
        capsys,
    )  # fmt: skip

    assert rc == 0, err
    cached = [m.market_id for m in load_market_cache("local_state/markets.json").records()]
    # By net USDC a day: the pool nobody competes for; Newsom (rebates, a 1w move); Smith (the most
    # volume, a 1d move); Whitmer; the BTC 5m market (no change served: spread and adverse cancel);
    # the TWAP market has no quote. By 24h volume (the default) it is 559657, 559659, 559652, ...
    assert cached == ["1812085", "559652", "559657", "559659", "1557558", "3763487"]
    assert "cache: selected 6 of 6 by expected_income" in out
    assert "USDC/day: reward + rebate + spread - adverse = net, for a 100-share bid and ask" in out
    rows = [line.split() for line in out.splitlines() if line[:6].strip().isdigit()]
    assert len(rows) == 3  # --top 3
    # rank, market, reward, rebate, spread, adverse, net, pool, density, move, source
    assert rows[0][:11] == ["1", "1812085", "30.000000", "0.000000", "0.000000", "0.000000", "30.000000",
                            "30.000000", "inf", "0.0276", "1d"]  # fmt: skip
    # (its move: the day's 0.135 over an hour, 0.135 / sqrt(24) = 0.0276, above the hour's 0.01)
    # Newsom, by hand: mid 0.2325, competition 230,438.23 / 0.2325 = 991,132 shares, fills 9,066.55 /
    # 0.2325 * 200 / 991,332 = 7.867 shares a day: rebate 7.867 * 0.04 * 0.25 * 0.2325 * 0.7675 =
    # 0.014039, spread 7.867 * 0.0005 = 0.003934, adverse 7.867 * 0.019 / sqrt(168) = 0.011533.
    assert rows[1][:11] == ["2", "559652", "0.000000", "0.014039", "0.003934", "0.011533", "0.006440",
                            "0.000000", "-", "0.0015", "1w"]  # fmt: skip
    assert rows[2][:2] == ["3", "559657"]


def income_rows(out: str) -> list[list[str]]:
    """The rows of the expected-income table, split on blanks."""
    return [line.split() for line in out.splitlines() if line[:6].strip().isdigit()]


@pytest.mark.usefixtures("workdir")
def test_refresh_ranks_by_the_order_books_against_the_emulator(capsys: pytest.CaptureFixture[str]) -> None:
    # Two markets Gamma cannot tell apart by reward density the right way round: "crowded" rests 5,000
    # shares a side at the touch; "far" only 10, and 20,000 a side 20 cents away (outside the 3-cent
    # reward band, so they never score). Gamma's liquidity counts the far ones (12,000 USDC against
    # 9,800), so Gamma ranks "crowded" first; the books show "far" has almost no scored competition.
    lot = QTY_ONE
    terms = {"rewards_min_qty": 5 * lot, "rewards_max_spread_px": 300, "rewards_daily_usdc6": 100_000_000}
    crowded = InitialBook(bids=((4_900, 5_000 * lot),), asks=((5_100, 5_000 * lot),))
    far = InitialBook(
        bids=((4_900, 10 * lot), (3_000, 20_000 * lot)), asks=((5_100, 10 * lot), (7_000, 20_000 * lot))
    )
    sc = Scenario(
        name="books",
        markets=(
            MarketConfig(slug="crowded", question="Crowded?", initial_book=crowded, **terms),
            MarketConfig(slug="far", question="Far?", initial_book=far, **terms),
        ),
        flow=FlowConfig(enabled=False),
    )
    write_config(Path("income.yaml"), "  rank_by: expected_income\n  limit: 1")
    argv = ["refresh-markets", "--config", "income.yaml", "--skip-classify", "--skip-index", "--top", "1"]

    with Emulator(sc, port=0) as emu:
        argv += ["--gamma-url", emu.gamma_url, "--clob-url", emu.clob_url]
        slug = {m["market"]: m["slug"] for m in emu.venue.market_ids()}
        rc_gamma, out_gamma, _ = run([*argv, "--skip-books"], capsys)
        by_gamma = [slug[m.condition_id] for m in load_market_cache("local_state/markets.json").records()]
        rc_book, out_book, err = run(argv, capsys)
        by_book = [slug[m.condition_id] for m in load_market_cache("local_state/markets.json").records()]

    assert (rc_gamma, rc_book) == (0, 0), err
    assert (by_gamma, by_book) == (["crowded"], ["far"])
    assert "order books: none read (--skip-books); every market priced from Gamma alone" in out_gamma
    # limit 1: 3 candidates by default, and there are 2 markets: 2 books, 2 requests.
    assert (
        f"order books: read 2 of 2 candidates (the best by the Gamma estimate) from {emu.clob_url} "
        "(2 requests)" in out_book
    )
    # rank, market, reward, rebate, spread, adverse, net, pool, density, move (2 cells), source
    (gamma_row,) = income_rows(out_gamma)
    (book_row,) = income_rows(out_book)
    assert (gamma_row[11], book_row[11]) == ("gamma", "book")
    # The book: 10 shares a side of competition at our distance, so 100 * 100 / 110 = 90.909091 a day.
    assert book_row[2] == "90.909091"
    summary = json.loads(Path("local_state/markets.json").read_text())["summary"]
    assert summary["books"]["requests"] == 2 and summary["books"]["failed"] == []


@pytest.mark.usefixtures("workdir")
def test_refresh_falls_back_to_gamma_for_each_book_that_fails(
    gamma: GammaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    ceasefire = next(m for m in gamma.markets if str(m.get("id")) == "1812085")
    ceasefire["closed"] = False
    yes = {str(m.get("id")): json.loads(m["clobTokenIds"])[0] for m in gamma.markets if m.get("clobTokenIds")}
    # By the Gamma estimate: 1812085, 559652, 559657, 559659, 1557558, 3763487 (the test above).
    gamma.fail(500, times=1, path="/book")  # 1812085's book: HTTP 500, no retry
    newsom = {"asset_id": yes["559652"], "bids": [{"price": "0.23", "size": "50"}],
              "asks": [{"price": "0.235", "size": "50"}], "tick_size": "0.001"}  # fmt: skip
    gamma.books = {yes["559652"]: newsom, yes["559657"]: b"{not json", yes["559659"]: {"asset_id": "other"}}
    write_config(Path("income.yaml"), "  rank_by: expected_income")

    rc, out, err = run(
        ["refresh-markets", "--config", "income.yaml", "--skip-classify", "--skip-index",
         "--gamma-url", gamma.url, "--clob-url", gamma.url, "--book-retries", "0", "--as-of", AS_OF],
        capsys,
    )  # fmt: skip

    assert rc == 0, err
    assert "Traceback" not in err
    books = [q["token_id"][0] for q in gamma.paths("/book")]
    assert len(books) == 6  # every tradable market (default: 3 per kept market, 10 kept), once each
    assert (
        f"order books: read 1 of 6 candidates (the best by the Gamma estimate) from {gamma.url} "
        "(6 requests); 5 priced from Gamma instead" in out
    )
    failed = [line for line in out.splitlines() if line.startswith("  book of market ")]
    assert len(failed) == 5
    assert failed[0].startswith("  book of market 1812085 not used: token ") and failed[0].endswith(
        ": HTTP 500 after 1 attempt"
    )
    assert "559657" in failed[1] and ": malformed book: book: " in failed[1]
    assert "559659" in failed[2] and "the reply is the book of another token ('other')" in failed[2]
    assert all("HTTP 404: " in line for line in failed[3:])
    sources = {row[1]: row[11] for row in income_rows(out) if len(row) > 11 and row[2] != "unpriced:"}
    assert sources == {
        "1812085": "gamma",
        "559652": "book",
        "559657": "gamma",
        "559659": "gamma",
        "1557558": "gamma",
    }
    summary = json.loads(Path("local_state/markets.json").read_text())["summary"]["books"]
    assert summary["read"] == ["559652"] and summary["requests"] == 6
    assert [f["market_id"] for f in summary["failed"]] == [
        "1812085",
        "559657",
        "559659",
        "1557558",
        "3763487",
    ]


@pytest.mark.usefixtures("workdir")
def test_refresh_reads_at_most_book_candidates_books(
    gamma: GammaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(Path("income.yaml"), "  rank_by: expected_income\n  income:\n    book_candidates: 2")

    rc, out, _ = run(
        ["refresh-markets", "--config", "income.yaml", "--skip-classify", "--skip-index",
         "--gamma-url", gamma.url, "--clob-url", gamma.url, "--book-retries", "0", "--as-of", AS_OF],
        capsys,
    )  # fmt: skip

    assert rc == 0
    assert len(gamma.paths("/book")) == 2
    assert "order books: read 0 of 2 candidates" in out and "(2 requests)" in out
    write_config(Path("none.yaml"), "  rank_by: expected_income\n  income:\n    book_candidates: 0")
    rc, out, _ = run(
        ["refresh-markets", "--config", "none.yaml", "--skip-classify", "--skip-index",
         "--gamma-url", gamma.url, "--clob-url", gamma.url, "--as-of", AS_OF],
        capsys,
    )  # fmt: skip
    assert rc == 0
    assert len(gamma.paths("/book")) == 2  # no more
    assert "order books: none read (market_selection.income.book_candidates: 0)" in out


@pytest.mark.usefixtures("workdir")
def test_refresh_stops_reading_books_from_an_unreachable_clob(
    gamma: GammaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:  # a loopback port nothing listens on: every connection is refused
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    write_config(Path("income.yaml"), "  rank_by: expected_income\n  income:\n    book_candidates: 6")

    rc, out, _ = run(
        ["refresh-markets", "--config", "income.yaml", "--skip-classify", "--skip-index",
         "--gamma-url", gamma.url, "--clob-url", dead, "--book-retries", "0", "--as-of", AS_OF],
        capsys,
    )  # fmt: skip

    assert rc == 0
    head = next(line for line in out.splitlines() if line.startswith("order books: read 0 of "))
    candidates = int(head.split()[5])
    assert candidates > UNREACHABLE_IN_A_ROW, head
    assert f"({UNREACHABLE_IN_A_ROW} requests)" in head  # then no more
    not_tried = [line for line in out.splitlines() if f"not tried: {dead} unreachable for 3 books" in line]
    assert len(not_tried) == candidates - UNREACHABLE_IN_A_ROW


@pytest.mark.usefixtures("workdir")
def test_refresh_refuses_an_unknown_rank_by_in_one_line(
    gamma: GammaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(Path("bad.yaml"), "  rank_by: income")

    rc, _, err = run(["refresh-markets", "--config", "bad.yaml", "--gamma-url", gamma.url], capsys)

    assert rc == 2
    assert err.strip().splitlines() == ["bad.yaml: market_selection.rank_by: invalid enum value 'income'"]
    assert not gamma.requests


@pytest.mark.usefixtures("workdir")
def test_refresh_when_gamma_stays_down_is_one_clear_line(
    gamma: GammaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    gamma.fail(503, times=10)

    rc, _, err = run(
        ["refresh-markets", "--config", "configs/market_maker.yaml", "--skip-index", "--gamma-url", gamma.url,
         "--gamma-retries", "1"],
        capsys,
    )  # fmt: skip

    assert rc == 1
    lines = [ln for ln in err.splitlines() if ln.startswith("polymm refresh-markets:")]
    assert len(lines) == 1
    assert "unavailable" in lines[0]
    assert "HTTP 503" in lines[0]
    assert not Path("local_state/markets.json").exists()


@pytest.mark.usefixtures("workdir")
def test_refresh_retries_a_429_then_succeeds(gamma: GammaServer, capsys: pytest.CaptureFixture[str]) -> None:
    gamma.fail(429, times=1, retry_after="0")

    rc, out, _ = run(
        ["refresh-markets", "--config", "configs/risk.yaml", "--skip-classify", "--skip-index",
         "--gamma-url", gamma.url, "--gamma-retries", "1", "--as-of", AS_OF],
        capsys,
    )  # fmt: skip

    assert rc == 0
    assert "(3 requests)" in out  # 429, /markets, /events


def test_refresh_missing_config_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rc, _, err = run(["refresh-markets", "--config", str(tmp_path / "nope.yaml")], capsys)

    assert rc == 2
    assert err.strip() == f"{tmp_path / 'nope.yaml'}: (file): no such file"


@requires_extra
@pytest.mark.usefixtures("workdir", "no_internet")
def test_refresh_with_classify_works_offline_and_indexes_without_duplicates(
    gamma: GammaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(
        Path("classify.yaml"),
        "  classify: true\n  limit: 20\n  include_categories: [politics, crypto, sports]",
        "  markets_json_path: state/markets.json\n  markets_chroma_dir: state/chroma",
    )
    argv = ["refresh-markets", "--config", "classify.yaml", "--gamma-url", gamma.url, "--as-of", "2026-01-01"]

    rc1, out1, err1 = run(argv, capsys)
    rc2, out2, _ = run(argv, capsys)

    assert (rc1, rc2) == (0, 0), err1
    assert "from Gamma tags" in out1
    records = load_market_cache("state/markets.json").records()
    assert {m.category for m in records} <= {"politics", "crypto", "sports", "finance", "tech", "other"}
    assert all(m.category for m in records)
    assert any(m.category_source == "tags" for m in records)
    assert Path("state/markets.categories.json").exists()
    n = len(records)
    assert f"{n} added, 0 re-embedded, 0 unchanged; {n} markets indexed" in out1
    assert f"0 added, 0 re-embedded, {n} unchanged; {n} markets indexed" in out2

    rc, out, _ = run(
        ["markets", "search", "Whitmer Democratic nomination", "--config", "classify.yaml", "-n", "2"], capsys
    )

    assert rc == 0
    assert "Gretchen Whitmer" in out.splitlines()[0]


@requires_extra
@pytest.mark.usefixtures("workdir")
def test_markets_search_json_output(gamma: GammaServer, capsys: pytest.CaptureFixture[str]) -> None:
    run(["refresh-markets", "--config", "configs/risk.yaml", "--skip-classify", "--gamma-url", gamma.url,
         "--as-of", AS_OF], capsys)  # fmt: skip

    rc, out, _ = run(["markets", "search", "Stephen A. Smith", "--json", "-n", "1"], capsys)

    assert rc == 0
    [hit] = json.loads(out)
    assert hit["market_id"] == "559657"


# --- errors name the flag or key to set --------------------------------------------------------------------


@pytest.mark.usefixtures("workdir")
def test_route_without_cache_names_flag_and_key(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(ROUTE_AS_WRITTEN, capsys)

    assert rc == 2
    assert err.count("\n") == 1
    assert "local_state/markets.json does not exist" in err
    assert "ops.markets_json_path in configs/market_maker.yaml" in err
    assert "refresh-markets" in err


@pytest.mark.usefixtures("workdir")
def test_route_without_any_cache_source_names_both_options(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(["route-markets", "--market-maker-limit", "3"], capsys)

    assert rc == 2
    assert "--markets-json-path" in err
    assert "--source-config" in err


@pytest.mark.usefixtures("workdir")
def test_route_strategy_without_output_names_its_flags(
    gamma: GammaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run(["refresh-markets", "--config", "configs/risk.yaml", "--skip-classify", "--skip-index", "--gamma-url",
         gamma.url], capsys)  # fmt: skip

    rc, _, err = run(
        ["route-markets", "--source-config", "configs/risk.yaml", "--option-seller-limit", "3"], capsys
    )

    assert rc == 2
    assert "--option-seller-output" in err
    assert "ops.selected_markets_path" in err


@pytest.mark.usefixtures("workdir")
def test_route_two_strategies_same_output_refused(
    gamma: GammaServer, capsys: pytest.CaptureFixture[str]
) -> None:
    run(["refresh-markets", "--config", "configs/risk.yaml", "--skip-classify", "--skip-index", "--gamma-url",
         gamma.url], capsys)  # fmt: skip

    rc, _, err = run(
        ["route-markets", "--source-config", "configs/risk.yaml", "--market-maker-output", "x.json",
         "--option-seller-output", "x.json"],
        capsys,
    )  # fmt: skip

    assert rc == 2
    assert "same file" in err


@pytest.mark.usefixtures("workdir")
def test_markets_search_without_index_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(["markets", "search", "bitcoin", "--markets-chroma-dir", "nowhere"], capsys)

    assert rc == 2
    assert "no market index at nowhere" in err


def test_cli_error_has_no_traceback_in_a_real_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "route-markets", "--markets-json-path", str(tmp_path / "m.json"),
         "--risk-manager-output", str(tmp_path / "rm.json")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip

    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1


# --- what run-market-maker calls -------------------------------------------------------------------------


def test_discover_markets_fetches_and_selects_with_strategy_filters(
    gamma: GammaServer, tmp_path: Path
) -> None:
    selection = "  min_liquidity: 1000\n  min_hours_to_end: 24\n  mid_price_band: [0.1, 0.9]\n  limit: 3"
    config = load_config(write_config(tmp_path / "mm.yaml", selection))

    found = discover_markets(config, now_ns=parse_iso_ns(AS_OF), gamma_url=gamma.url)

    assert [m.market_id for m in found.selection.selected] == ["559652"]
    assert found.selection.reason_counts() == {"mid_outside_band": 2}
    q = gamma.paths("/markets")[0]
    assert q["liquidity_num_min"] == ["1000"]
    assert q["end_date_min"] == ["2026-03-13T09:00:00Z"]
    assert found.raw["559652"]["id"] == "559652"


def test_progress_bar_draws_only_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        bar = Progress("fetching", stream=stream, width=10)
        bar(50, 100)
        bar(60, 100)  # the listing ended early, on a short page
        bar.close()

    assert tty.getvalue().split("\r")[1:] == [
        "fetching [#####.....] 50/100",
        "fetching [######....] 60/100",
        "fetching [##########] 60/60\n",
    ]
    assert pipe.getvalue() == ""
