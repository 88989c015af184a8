from itertools import combinations

from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from core.inventory import (
    Inventory,
    apply_fill,
    mark_to_market,
    order_losses,
    settle,
    share_budget,
    value_if,
    worst_case_loss,
    worst_case_losses,
)
from core.units import PX_ONE, Outcome, Side
from tests.strategies import inventories, orders


def test_apply_fill_buy_yes_then_sell_realizes_spread():
    inv = apply_fill(Inventory(), Outcome.YES, Side.BUY, 4_000, 10_000, 0)

    inv = apply_fill(inv, Outcome.YES, Side.SELL, 4_500, 10_000, 0)

    assert inv.yes_qty == 0
    assert inv.cash_usdc6 == 5_000_000  # bought 100 at 0.40, sold at 0.45
    assert inv.realized_usdc6 == 5_000_000


def test_no_share_is_short_one_yes_plus_one_usdc():
    long_no = apply_fill(Inventory(), Outcome.NO, Side.BUY, 6_000, 10_000, 0)

    assert long_no.net_yes_qty == -10_000
    # Economically short 100 YES at 0.40 plus 100 USDC - 60 USDC paid:
    for yes_won in (True, False):
        short_yes_value = -60_000_000 + (0 if yes_won else 100_000_000)
        assert value_if(long_no, yes_won) == short_yes_value


def test_worst_case_loss_counts_resting_orders_that_hurt():
    inv = apply_fill(Inventory(), Outcome.YES, Side.BUY, 5_000, 10_000, 0)  # 100 YES at 0.50

    assert worst_case_losses(inv) == (0, 50_000_000)
    bid = (Outcome.YES, Side.BUY, 4_000, 10_000)
    ask_as_buy_no = (Outcome.NO, Side.BUY, 4_000, 10_000)  # YES ask at 0.60
    assert worst_case_losses(inv, [bid]) == (0, 90_000_000)
    assert worst_case_losses(inv, [ask_as_buy_no]) == (0, 50_000_000)


def test_settle_pays_winning_shares_one_usdc():
    inv = Inventory(yes_qty=10_000, no_qty=2_000, cash_usdc6=-30_000_000)

    assert settle(inv, True).cash_usdc6 == 70_000_000
    assert settle(inv, False).cash_usdc6 == -10_000_000
    assert settle(inv, True).yes_qty == settle(inv, True).no_qty == 0


@given(orders)
def test_sell_yes_and_buy_no_at_complement_carry_same_risk(order):
    _, _, px, qty = order

    assert order_losses(Outcome.YES, Side.SELL, px, qty) == order_losses(
        Outcome.NO, Side.BUY, PX_ONE - px, qty
    )
    assert order_losses(Outcome.YES, Side.BUY, px, qty) == order_losses(
        Outcome.NO, Side.SELL, PX_ONE - px, qty
    )


@given(inventories(), st.lists(orders, max_size=5))
def test_worst_case_loss_is_the_worst_subset_of_fills(inv, resting):
    # Brute force: every subset of the resting orders may fill; the cap bounds the worst of them.
    worst = 0
    for k in range(len(resting) + 1):
        for subset in combinations(resting, k):
            after = inv
            for outcome, side, px, qty in subset:
                after = apply_fill(after, outcome, side, px, qty, 0)
            worst = max(worst, -value_if(after, True), -value_if(after, False))

    assert worst_case_loss(inv, resting) == worst


@given(inventories(), st.integers(0, PX_ONE))
def test_mark_to_market_lies_between_resolution_values(inv, mid):
    lo, hi = sorted((value_if(inv, True), value_if(inv, False)))

    assert lo <= mark_to_market(inv, mid) <= hi


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
        qty=st.integers(1, 50_000),
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
        assert self.inv.cash_usdc6 == -sum(s * p * q + f for _, s, p, q, f in self.ledger)
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
