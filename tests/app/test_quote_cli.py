import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from app.cli import main
from core.units import QTY_ONE, Outcome, Side, format_px, format_usdc6

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


def sized_config(tmp_path, sizes="[50, 100, 200]"):
    text = Path(MM).read_text().replace("level_sizes_shares: [10, 20, 40]", f"level_sizes_shares: {sizes}")
    assert sizes in text
    path = tmp_path / "mm.yaml"
    path.write_text(text)
    return str(path)


def test_quote_long_inventory_keeps_every_ask_whole_issue_9_example(tmp_path, capsys):
    # Selling YES shares we hold lowers the worst case: the cap never trims those asks.
    cfg = sized_config(tmp_path)
    args = ["quote", "--config", cfg, "--book", BOOKS[0], "--inventory", "1000"]
    assert main([*args, "--json"]) == 0
    out = msgspec.json.decode(capsys.readouterr().out)

    assert [a["qty"] for a in out["asks"]] == [50 * QTY_ONE, 100 * QTY_ONE, 200 * QTY_ONE]
    sells = [o for o in out["orders"] if o["side"] == Side.SELL and o["outcome"] == Outcome.YES]
    assert [o["qty"] for o in sells] == [50 * QTY_ONE, 100 * QTY_ONE, 200 * QTY_ONE]
    assert not [t for t in out["reasons"]["trims"] if t.startswith("ask")]
    assert out["reasons"]["loss_if_yes_usdc6"] < 0  # long YES: a YES win is a gain, signed
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "trims" not in text
    assert "SELL YES       50 @ 0.08" in text and "SELL YES      200 @ 0.1\n" in text


def test_quote_tick_must_be_one_the_venue_uses(capsys):
    assert main(["quote", "--config", MM, "--book", BOOKS[0], "--tick", "0.02"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("--tick: ") and "0.02" in err

    out = quote_json(capsys, "--book", BOOKS[0], "--tick", "0.005")
    assert out["tick_px"] == 50
    assert all(q["px"] % 50 == 0 for q in out["bids"] + out["asks"])
    assert any(q["px"] % 100 for q in out["bids"] + out["asks"])  # on the half-cent grid, not the cent one


def line(text, prefix):
    return next(x for x in text.splitlines() if x.startswith(prefix))


def test_quote_table_shows_the_skew_as_the_signed_move_of_the_mid(capsys):
    for inventory, sign in (("300", "-"), ("-300", "+")):
        out = quote_json(capsys, "--book", BOOKS[0], "--inventory", inventory)
        move = out["skewed_mid_px"] - out["fair_px"]
        assert (move < 0) == (sign == "-") and move != 0  # long lowers the mid, short raises it
        assert main(["quote", "--config", MM, "--book", BOOKS[0], "--inventory", inventory]) == 0
        fair = line(capsys.readouterr().out, "fair")
        assert f"skew {sign}{format_px(abs(move))} " in fair


def test_quote_risk_line_shows_the_bound_above_the_cap_and_signed_losses(capsys):
    # Long 150 NO bought at ~0.925: 138.75 USDC lost if YES wins, past the 100 cap; a NO win gains.
    assert main(["quote", "--config", MM, "--book", BOOKS[0], "--inventory", "-150"]) == 0
    risk = line(capsys.readouterr().out, "risk")
    out = quote_json(capsys, "--book", BOOKS[0], "--inventory", "-150")
    r = out["reasons"]

    assert r["bound_usdc6"] == r["loss_if_yes_usdc6"] == 138_750_000 and r["cap_usdc6"] == 100_000_000
    assert r["loss_if_no_usdc6"] < 0
    assert "cap 100 USDC (bound 138.75" in risk
    assert f"if YES +138.75  if NO -{format_usdc6(-r['loss_if_no_usdc6'])} USDC" in risk
    assert main(["quote", "--config", MM, "--book", BOOKS[0]]) == 0
    assert "bound" not in line(capsys.readouterr().out, "risk")  # the bound is the cap: not repeated


def test_quote_json_states_its_units_so_a_reader_computes_prices_and_sizes(capsys):
    out = quote_json(capsys, "--book", BOOKS[0])
    units = out["units"]

    def value(raw, unit):
        return Decimal(raw) * Decimal(units[unit]["scale"])

    assert value(out["tick_px"], "px") == Decimal("0.01")
    assert value(out["bids"][0]["px"], "px") == Decimal("0.06")
    assert value(out["bids"][0]["qty"], "qty") == Decimal("10")  # the market maker's first level
    assert value(out["reasons"]["cap_usdc6"], "usdc6") == Decimal("100")
    assert {"px", "*_px"} <= set(units["px"]["applies_to"])
    assert out["codes"]["side"][str(out["orders"][0]["side"])] == "BUY"
    assert out["codes"]["outcome"][str(out["orders"][0]["outcome"])] == "YES"


def test_quote_no_token_book_is_quoted_on_the_yes_book_it_mirrors(tmp_path, capsys):
    # The NO token's book of the same market: a NO bid at 1 - p for each YES ask at p and vice versa
    # (the venue lists the best level last on both sides, so the order carries over).
    book = msgspec.json.decode(Path(BOOKS[0]).read_bytes())

    def mirrored(levels):
        return [dict(lv, price=str(1 - Decimal(lv["price"]))) for lv in levels]

    no_book = dict(book, bids=mirrored(book["asks"]), asks=mirrored(book["bids"]))
    path = tmp_path / "no.json"
    path.write_bytes(msgspec.json.encode(no_book))

    yes = quote_json(capsys, "--book", BOOKS[0])
    no = quote_json(capsys, "--book", str(path), "--outcome", "no")

    assert (no["bids"], no["asks"], no["orders"]) == (yes["bids"], yes["asks"], yes["orders"])
