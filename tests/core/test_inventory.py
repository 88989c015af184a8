from itertools import combinations

from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from core.inventory import (
    Inventory,
    apply_fill,
    budget_rooms,
    mark_to_market,
    marked_pnl_usdc6,
    order_losses_usdc10,
    settle,
    share_budget,
    value_if,
    worst_case_loss,
    worst_case_losses,
    worst_case_losses_usdc10,
)
from core.units import PX_ONE, QTY_ONE, USDC10_PER_USDC6, Outcome, Side, notional_usdc6
from tests.strategies import inventories, orders

SHARE = QTY_ONE


def test_apply_fill_buy_yes_then_sell_realizes_spread():
    inv = apply_fill(Inventory(), Outcome.YES, Side.BUY, 4_000, 100 * SHARE, 0)

    inv = apply_fill(inv, Outcome.YES, Side.SELL, 4_500, 100 * SHARE, 0)

    assert inv.yes_qty == 0
    assert inv.cash_usdc6 == 5_000_000  # bought 100 at 0.40, sold at 0.45
    assert inv.realized_usdc6 == 5_000_000


def test_six_decimal_maker_fill_changes_inventory_by_exactly_its_size():
    # The maker side of a real $5 market BUY at 0.66 (tests/fixtures/polymarket/onchain): 7.575758 shares.
    inv = apply_fill(Inventory(), Outcome.YES, Side.SELL, 6_600, 7_575_758, 0)

    assert inv.yes_qty == -7_575_758
    assert inv.cash_usdc6 == 5_000_000  # floor(7.575758 * 0.66 = 5.00000028), as the venue pays it


def test_no_share_is_short_one_yes_plus_one_usdc():
    long_no = apply_fill(Inventory(), Outcome.NO, Side.BUY, 6_000, 100 * SHARE, 0)

    assert long_no.net_yes_qty == -100 * SHARE
    # Economically short 100 YES at 0.40 plus 100 USDC - 60 USDC paid:
    for yes_won in (True, False):
        short_yes_value = -60_000_000 + (0 if yes_won else 100_000_000)
        assert value_if(long_no, yes_won) == short_yes_value


def test_worst_case_loss_counts_resting_orders_that_hurt():
    inv = apply_fill(Inventory(), Outcome.YES, Side.BUY, 5_000, 100 * SHARE, 0)  # 100 YES at 0.50

    assert worst_case_losses(inv) == (0, 50_000_000)
    bid = (Outcome.YES, Side.BUY, 4_000, 100 * SHARE)
    ask_as_buy_no = (Outcome.NO, Side.BUY, 4_000, 100 * SHARE)  # YES ask at 0.60
    assert worst_case_losses(inv, [bid]) == (0, 90_000_000)
    assert worst_case_losses(inv, [ask_as_buy_no]) == (0, 50_000_000)
    # Signed: holding 100 YES bought at 0.50 locks in a 50 USDC gain if YES wins; the ask eats 40 of it.
    assert worst_case_losses_usdc10(inv, [ask_as_buy_no]) == (
        -10_000_000 * USDC10_PER_USDC6,
        50_000_000 * USDC10_PER_USDC6,
    )


def test_settle_pays_winning_shares_one_usdc():
    inv = Inventory(yes_qty=100 * SHARE, no_qty=20 * SHARE, cash_usdc6=-30_000_000)

    assert settle(inv, True).cash_usdc6 == 70_000_000
    assert settle(inv, False).cash_usdc6 == -10_000_000
    assert settle(inv, True).yes_qty == settle(inv, True).no_qty == 0


@given(orders)
def test_sell_yes_and_buy_no_at_complement_carry_same_risk(order):
    _, _, px, qty = order

    assert order_losses_usdc10(Outcome.YES, Side.SELL, px, qty) == order_losses_usdc10(
        Outcome.NO, Side.BUY, PX_ONE - px, qty
    )
    assert order_losses_usdc10(Outcome.YES, Side.BUY, px, qty) == order_losses_usdc10(
        Outcome.NO, Side.SELL, PX_ONE - px, qty
    )


def _settled_losses_usdc10(inv: Inventory, fills) -> tuple[int, int]:
    # Reference: apply the fills one by one with exact (Usdc10) cash and settle in both outcomes.
    cash, yes, no = inv.cash_usdc6 * USDC10_PER_USDC6, inv.yes_qty, inv.no_qty
    for outcome, side, px, qty in fills:
        cash -= side * px * qty
        if outcome is Outcome.YES:
            yes += side * qty
        else:
            no += side * qty
    return -(cash + yes * USDC10_PER_USDC6), -(cash + no * USDC10_PER_USDC6)


@given(inventories(), st.lists(orders, max_size=5))
def test_worst_case_loss_is_the_worst_subset_of_fills(inv, resting):
    # Brute force: every subset of the resting orders may fill; the worst case is the worst of them,
    # per outcome and signed (a gain the inventory locks in is a negative loss).
    worst_yes = worst_no = None
    for k in range(len(resting) + 1):
        for subset in combinations(resting, k):
            loss_yes, loss_no = _settled_losses_usdc10(inv, subset)
            worst_yes = loss_yes if worst_yes is None else max(worst_yes, loss_yes)
            worst_no = loss_no if worst_no is None else max(worst_no, loss_no)

    assert worst_case_losses_usdc10(inv, resting) == (worst_yes, worst_no)
    ceil6 = [-(-w // USDC10_PER_USDC6) for w in (worst_yes, worst_no)]
    assert worst_case_loss(inv, resting) == max(0, *ceil6)


@given(inventories(), st.integers(0, PX_ONE))
def test_mark_to_market_lies_between_resolution_values(inv, mid):
    lo, hi = sorted((value_if(inv, True), value_if(inv, False)))

    assert lo <= mark_to_market(inv, mid) <= hi


fills = st.lists(
    st.tuples(
        st.sampled_from(Outcome),
        st.sampled_from(Side),
        st.integers(1, PX_ONE - 1),
        st.integers(1, 1_000 * QTY_ONE),
        st.integers(0, 1_000_000),
    ),
    max_size=12,
)


@given(fills, st.integers(0, PX_ONE))
def test_marked_pnl_from_flat_is_the_mark_to_market(seq, mid):
    # Started flat, PnL against the cost basis is the marked value of cash and shares: the status
    # line's PnL in paper and dry-run is the simulator's mark.
    inv = Inventory()
    for outcome, side, px, qty, fee in seq:
        inv = apply_fill(inv, outcome, side, px, qty, fee)

    assert marked_pnl_usdc6(inv, mid) == mark_to_market(inv, mid)


def test_marked_pnl_of_positions_held_at_start_counts_from_their_cost():
    # Live starts with the venue's positions and their cost (no cash): 100 YES bought at 0.40.
    held = Inventory(yes_qty=100 * SHARE, yes_cost_usdc6=40_000_000)

    assert marked_pnl_usdc6(held, 4_000) == 0
    assert marked_pnl_usdc6(held, 4_500) == 5_000_000
    sold = apply_fill(held, Outcome.YES, Side.SELL, 4_500, 50 * SHARE, 100_000)
    assert marked_pnl_usdc6(sold, 4_500) == 5_000_000 - 100_000  # half realized, half marked, fee paid


class InventoryMachine(RuleBasedStateMachine):
    """Inventory against a plain ledger: shares, cash and fees are conserved fill by fill."""

    @initialize()
    def start(self):
        self.inv = Inventory()
        self.ledger: list[tuple[Outcome, Side, int, int, int]] = []

    @rule(
        outcome=st.sampled_from(list(Outcome)),
        side=st.sampled_from(list(Side)),
        px=st.integers(1, PX_ONE - 1),
        qty=st.integers(1, 500 * QTY_ONE),
        fee=st.integers(0, 10_000),
    )
    def fill(self, outcome, side, px, qty, fee):
        self.inv = apply_fill(self.inv, outcome, side, px, qty, fee)
        self.ledger.append((outcome, side, px, qty, fee))

    @invariant()
    def shares_are_signed_sum_of_fills(self):
        for outcome, held in ((Outcome.YES, self.inv.yes_qty), (Outcome.NO, self.inv.no_qty)):
            assert held == sum(s * q for o, s, _, q, _ in self.ledger if o is outcome)

    @invariant()
    def cash_is_minus_signed_notional_minus_fees(self):
        assert self.inv.cash_usdc6 == -sum(s * notional_usdc6(p, q) + f for _, s, p, q, f in self.ledger)
        assert self.inv.fees_usdc6 == sum(f for *_, f in self.ledger)

    @invariant()
    def settlement_value_matches_ledger(self):
        for yes_won in (True, False):
            settled = settle(self.inv, yes_won)
            assert settled.cash_usdc6 == value_if(self.inv, yes_won)


TestInventoryMachine = InventoryMachine.TestCase


@given(st.integers(0, 10**10), st.lists(st.integers(0, 10**9), min_size=1, max_size=20))
def test_shared_budget_rooms_add_up_to_the_cap(cap, exposures):
    rooms = share_budget(cap, exposures)

    assert sum(rooms) <= cap and cap - sum(rooms) < len(exposures)
    assert all(r >= 0 for r in rooms)
    if sum(exposures) <= cap:
        assert len({r - e for r, e in zip(rooms, exposures, strict=True)}) == 1  # an equal share each
    else:
        assert all(r <= e for r, e in zip(rooms, exposures, strict=True))  # everyone trims


@given(
    st.lists(st.integers(0, 10**9), min_size=1, max_size=12).flatmap(
        lambda ex: st.tuples(
            st.just(ex),
            st.lists(st.sampled_from(("", "a", "b")), min_size=len(ex), max_size=len(ex)),
        )
    ),
    st.integers(0, 10**10) | st.none(),
    st.integers(0, 10**10),
)
def test_budget_rooms_respect_the_global_and_each_group_cap(exposures_groups, global_cap, group_cap):
    exposures, groups = exposures_groups

    rooms = budget_rooms(exposures, global_cap, groups, group_cap)

    if global_cap is not None:
        assert sum(rooms) <= global_cap
    for g in ("a", "b"):
        members = [r for r, gg in zip(rooms, groups, strict=True) if gg == g]
        assert sum(members) <= group_cap or not members
    # A market outside any group gets exactly its global share (or no limit).
    expected = share_budget(global_cap, exposures) if global_cap is not None else [None] * len(exposures)
    for room, g, e in zip(rooms, groups, expected, strict=True):
        if not g:
            assert room == e
