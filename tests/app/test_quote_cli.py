import subprocess
import sys

import msgspec
import pytest

from app.cli import main

BOOKS = [
    "tests/fixtures/polymarket/book_2026-08_captured.json",
    "tests/fixtures/polymarket/book_2024-10_trump_negrisk.json",
]
MM = "configs/market_maker.yaml"


def quote_json(capsys, *extra):
    assert main(["quote", "--config", MM, *extra, "--json"]) == 0
    return msgspec.json.decode(capsys.readouterr().out)


@pytest.mark.parametrize("book", BOOKS)
def test_quote_real_book_prints_two_sided_ladder_with_reasons(capsys, book):
    out = quote_json(capsys, "--book", book)

    assert out["quote"] is True
    assert len(out["bids"]) >= 2 and len(out["asks"]) >= 2
    assert set(out["bids"][0]) == {"px", "qty"}
    assert out["bids"][0]["px"] > out["bids"][1]["px"]  # best first
    assert out["asks"][0]["px"] < out["asks"][1]["px"]
    assert out["fair_px"] > 0 and out["skewed_mid_px"] > 0
    assert out["reasons"]["fair_source"] == "microprice"


@pytest.mark.parametrize("book", BOOKS)
def test_quote_positive_inventory_never_raises_negative_never_lowers(capsys, book):
    flat = quote_json(capsys, "--book", book)
    long = quote_json(capsys, "--book", book, "--inventory", "150")
    short = quote_json(capsys, "--book", book, "--inventory", "-150")

    def prices(d):
        return [q["px"] for q in d["bids"]], [q["px"] for q in d["asks"]]

    for a, b in zip(prices(long), prices(flat), strict=True):
        assert all(x <= y for x, y in zip(a, b, strict=False))
    for a, b in zip(prices(short), prices(flat), strict=True):
        assert all(x >= y for x, y in zip(a, b, strict=False))
    assert long["skewed_mid_px"] < flat["skewed_mid_px"] < short["skewed_mid_px"]


def test_quote_empty_side_book_gives_no_quote_with_reason(capsys):
    out = quote_json(capsys, "--book", "tests/fixtures/polymarket/book_2026-08_empty_ask_negrisk.json")

    assert out["quote"] is False and out["no_quote"] == "one_sided_book" and out["bids"] == []


def test_quote_table_for_people(capsys):
    assert main(["quote", "--config", MM, "--book", BOOKS[0]]) == 0

    text = capsys.readouterr().out
    assert "fair" in text and "BID px" in text and "BUY  YES" in text


def test_polymm_help_lists_commands():
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "--help"], capture_output=True, text=True, check=True
    )

    assert "quote" in proc.stdout


def test_quote_inventory_takes_the_token_base_unit_and_is_valued_at_the_fair_guess(capsys):
    out = quote_json(capsys, "--book", BOOKS[0], "--inventory", "12.345678")

    assert out["reasons"]["inventory_qty"] == 12_345_678  # 1e-6 shares: every decimal kept
    assert main(["quote", "--config", MM, "--book", BOOKS[0], "--inventory", "1.1234567"]) == 2
    assert "--inventory" in capsys.readouterr().err


def test_quote_min_size_is_an_order_size_on_the_cent_share_grid(capsys):
    out = quote_json(capsys, "--book", BOOKS[0], "--min-size", "7.5")

    assert out["min_qty"] == 7_500_000
    assert all(q["qty"] >= 7_500_000 and q["qty"] % 10_000 == 0 for q in out["bids"] + out["asks"])
    assert main(["quote", "--config", MM, "--book", BOOKS[0], "--min-size", "5.001"]) == 2
    assert "--min-size" in capsys.readouterr().err


def test_quote_table_shows_shares_and_usdc(capsys):
    assert main(["quote", "--config", MM, "--book", BOOKS[0], "--inventory", "-2.5"]) == 0

    text = capsys.readouterr().out
    assert "min size 5\n" in text and "inventory -2.5 sh" in text
    assert "BUY  YES       10 @ " in text  # the market maker's first level, 10 shares
    assert "risk   cap 100 USDC" in text
