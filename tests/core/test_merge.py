"""Merging YES+NO pairs: the decision (``core.merge``) and the booking (``core.inventory.apply_merge``)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.inventory import (
    Inventory,
    apply_fill,
    apply_merge,
    mark_to_market,
    marked_pnl_usdc6,
    settle,
    value_if,
    worst_case_losses_usdc10,
)
from core.merge import free_pairs_qty, merge_qty
from core.units import PX_ONE, QTY_ONE, Outcome, Side
from tests.strategies import inventories, orders

SHARE = QTY_ONE
fills = st.lists(
    st.tuples(
        st.sampled_from(Outcome),
        st.sampled_from(Side),
        st.integers(1, PX_ONE - 1),
        st.integers(1, 1_000 * QTY_ONE),
        st.integers(0, 1_000_000),
    ),
    max_size=10,
)


def test_merging_pairs_bought_below_one_dollar_realizes_the_difference():
    inv = apply_fill(Inventory(), Outcome.YES, Side.BUY, 4_000, 100 * SHARE, 0)  # 40 USDC
    inv = apply_fill(inv, Outcome.NO, Side.BUY, 5_500, 60 * SHARE, 0)  # 33 USDC

    merged = apply_merge(inv, 60 * SHARE)

    assert (merged.yes_qty, merged.no_qty) == (40 * SHARE, 0)
    assert merged.cash_usdc6 == inv.cash_usdc6 + 60_000_000  # 1 USDC a pair
    assert merged.yes_cost_usdc6 == 16_000_000  # 40 YES left at 0.40
    assert merged.no_cost_usdc6 == 0
    # 60 pairs cost 60 * (0.40 + 0.55) = 57 USDC and returned 60.
    assert merged.realized_usdc6 == 3_000_000


def test_merge_of_more_pairs_than_held_is_refused():
    inv = Inventory(yes_qty=5 * SHARE, no_qty=3 * SHARE)

    with pytest.raises(ValueError, match="cannot merge"):
        apply_merge(inv, 3 * SHARE + 1)
    with pytest.raises(ValueError, match="cannot merge"):
        apply_merge(inv, -1)
    assert apply_merge(inv, 0) == inv


@given(inventories(), st.data())
def test_merge_moves_shares_cash_and_pnl_exactly(inv, data):
    q = data.draw(st.integers(0, min(inv.yes_qty, inv.no_qty)))
    mid = data.draw(st.integers(0, PX_ONE))

    merged = apply_merge(inv, q)

    # Exactly q of each share out, exactly q Usdc6 in (a pair is 1 pUSD; q is in 1e-6 shares).
    assert merged.yes_qty == inv.yes_qty - q
    assert merged.no_qty == inv.no_qty - q
    assert merged.cash_usdc6 == inv.cash_usdc6 + q
    assert merged.fees_usdc6 == inv.fees_usdc6
    # Realized PnL moves by the pairs' value less the cost basis they carried out.
    cost_out = (inv.yes_cost_usdc6 - merged.yes_cost_usdc6) + (inv.no_cost_usdc6 - merged.no_cost_usdc6)
    assert merged.realized_usdc6 - inv.realized_usdc6 == q - cost_out
    # ... and that cost is the pairs' average cost (each outcome's share of its basis, floored).
    if q:
        assert inv.yes_cost_usdc6 * q // inv.yes_qty + inv.no_cost_usdc6 * q // inv.no_qty == cost_out
    # The value is unchanged: at resolution either way, at any prices that sum to 1, and the PnL.
    for yes_won in (True, False):
        assert value_if(merged, yes_won) == value_if(inv, yes_won)
        assert settle(merged, yes_won).cash_usdc6 == settle(inv, yes_won).cash_usdc6
        assert settle(merged, yes_won).realized_usdc6 == settle(inv, yes_won).realized_usdc6
    assert mark_to_market(merged, mid) == mark_to_market(inv, mid)
    assert marked_pnl_usdc6(merged, mid) == marked_pnl_usdc6(inv, mid)
    assert worst_case_losses_usdc10(merged) == worst_case_losses_usdc10(inv)


@given(fills, st.data())
def test_merge_after_any_fills_keeps_the_pnl_identity(seq, data):
    # From flat: PnL against cost (realized - fees + marked - cost) equals the mark-to-market, merge or not.
    inv = Inventory()
    for outcome, side, px, qty, fee in seq:
        inv = apply_fill(inv, outcome, side, px, qty, fee)
    pairs = min(inv.yes_qty, inv.no_qty)
    q = data.draw(st.integers(0, max(pairs, 0)))
    mid = data.draw(st.integers(0, PX_ONE))

    merged = apply_merge(inv, q)

    assert marked_pnl_usdc6(merged, mid) == mark_to_market(merged, mid) == mark_to_market(inv, mid)


def test_free_pairs_leave_the_shares_our_sells_offer():
    inv = Inventory(yes_qty=100 * SHARE, no_qty=70 * SHARE)
    sell_yes = (Outcome.YES, Side.SELL, 6_000, 50 * SHARE)
    sell_no = (Outcome.NO, Side.SELL, 5_000, 10 * SHARE)
    buy_yes = (Outcome.YES, Side.BUY, 4_000, 500 * SHARE)

    assert free_pairs_qty(inv, []) == 70 * SHARE
    assert free_pairs_qty(inv, [sell_yes, buy_yes]) == 50 * SHARE
    assert free_pairs_qty(inv, [sell_yes, sell_no]) == 50 * SHARE
    assert free_pairs_qty(inv, [sell_no, sell_no]) == 50 * SHARE
    assert merge_qty(inv, [sell_yes], 50 * SHARE) == 50 * SHARE  # reaching the minimum is enough
    assert merge_qty(inv, [sell_yes], 50 * SHARE + 1) == 0
    assert merge_qty(Inventory(), [], 0) == 0  # nothing to merge is never a merge


@given(inventories(), st.lists(orders, max_size=6), st.integers(0, 100 * QTY_ONE))
def test_merge_qty_never_touches_reserved_shares(inv, resting, min_qty):
    q = merge_qty(inv, resting, min_qty)

    reserved = {o: sum(r[3] for r in resting if r[0] is o and r[1] is Side.SELL) for o in Outcome}
    assert q == 0 or q >= max(min_qty, 1)
    if q:
        assert q <= inv.yes_qty - reserved[Outcome.YES]
        assert q <= inv.no_qty - reserved[Outcome.NO]
        # Every free pair: after it, one side has nothing free left.
        after = apply_merge(inv, q)
        assert free_pairs_qty(after, resting) == 0


def test_the_shipped_configs_merge_only_in_rewards_maker():
    from app.configfile import load_config  # noqa: PLC0415
    from core.quoting import quote_params  # noqa: PLC0415

    for path in ("configs/market_maker.yaml", "configs/option_seller.yaml"):
        assert not quote_params(load_config(path)).merge_enabled, path
    rm = quote_params(load_config("configs/rewards_maker.yaml"))
    assert rm.merge_enabled and rm.merge_min_pairs_qty == 20 * SHARE


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("merge:\n  min_pairs_shares: 0\n", "merge.min_pairs_shares: expected `float` > 0.0"),
        ("merge:\n  min_pairs_shares: 1.234\n", "merge.min_pairs_shares: 1.234 has more than 2 decimals"),
        ("merge:\n  enable: true\n", "merge.enable: unknown key"),
    ],
)
def test_a_bad_merge_section_is_one_line_naming_the_file_and_key(tmp_path, section, expected):
    from app.configfile import ConfigFileError, load_config  # noqa: PLC0415

    path = tmp_path / "c.yaml"
    path.write_text("strategy: market_maker\n" + section)

    with pytest.raises(ConfigFileError) as err:
        load_config(path)

    assert str(err.value).startswith(f"{path}: ")
    assert expected in str(err.value)
    assert "\n" not in str(err.value)
