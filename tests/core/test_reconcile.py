from hypothesis import example, given
from hypothesis import strategies as st

from core.inventory import Inventory, worst_case_losses_usdc10
from core.quoting import DesiredOrder
from core.reconcile import Tolerance, admit, reconcile, reconcile_admit
from core.structs import OpenOrder
from core.units import QTY_ONE, USDC10_PER_USDC6, Outcome, Side
from tests.strategies import inventories

SHARE = QTY_ONE
desired_orders = st.builds(
    DesiredOrder,
    st.sampled_from(list(Outcome)),
    st.sampled_from(list(Side)),
    st.integers(1, 99).map(lambda i: i * 100),
    st.integers(1, 50).map(lambda i: i * SHARE),
)
tolerances = st.builds(
    Tolerance, px=st.sampled_from([0, 100, 200]), qty_pct=st.sampled_from([0.0, 10.0, 50.0])
)


def as_open(orders, prefix="o", pending=()):
    return tuple(
        OpenOrder(
            client_id=f"{prefix}{i}",
            outcome=d.outcome,
            side=d.side,
            px=d.px,
            qty=d.qty,
            cancel_pending=i in pending,
        )
        for i, d in enumerate(orders)
    )


def apply(plan, open_orders, start=1000):
    # What the venue holds after the plan: kept orders plus new ones (cancel-pending ones are gone soon).
    kept = [o for o in open_orders if o.client_id in plan.kept]
    return tuple(kept) + as_open(plan.places, prefix="n")


def test_reconcile_keeps_exact_cancels_stale_places_missing():
    want = (
        DesiredOrder(Outcome.YES, Side.BUY, 4_600, 10 * SHARE),
        DesiredOrder(Outcome.NO, Side.BUY, 5_100, 10 * SHARE),
    )
    have = (
        OpenOrder(client_id="a", outcome=Outcome.YES, side=Side.BUY, px=4_600, qty=10 * SHARE),
        OpenOrder(client_id="b", outcome=Outcome.YES, side=Side.BUY, px=4_500, qty=10 * SHARE),
    )

    plan = reconcile(want, have)

    assert plan.kept == ("a",)
    assert plan.cancels == ("b",)
    assert plan.places == (want[1],)


def test_reconcile_within_tolerance_keeps_queue_priority_only_if_not_riskier():
    want = (DesiredOrder(Outcome.YES, Side.BUY, 4_600, 10 * SHARE),)
    lower = (OpenOrder(client_id="a", outcome=Outcome.YES, side=Side.BUY, px=4_500, qty=10 * SHARE),)
    higher = (OpenOrder(client_id="b", outcome=Outcome.YES, side=Side.BUY, px=4_700, qty=10 * SHARE),)
    tol = Tolerance(px=100, qty_pct=10)

    assert reconcile(want, lower, tol).kept == ("a",)
    assert reconcile(want, higher, tol).cancels == ("b",)  # a higher bid risks more than the one wanted


def test_reconcile_cancel_in_flight_is_neither_kept_nor_cancelled_again():
    want = (DesiredOrder(Outcome.YES, Side.BUY, 4_600, 10 * SHARE),)
    have = (
        OpenOrder(
            client_id="a", outcome=Outcome.YES, side=Side.BUY, px=4_600, qty=10 * SHARE, cancel_pending=True
        ),
    )

    plan = reconcile(want, have)

    assert plan.cancels == () and plan.kept == () and plan.places == want


@given(st.lists(desired_orders, max_size=8), tolerances)
def test_reconcile_of_desired_against_itself_is_empty(orders, tol):
    d = tuple(orders)

    plan = reconcile(d, as_open(d), tol)

    assert plan.empty and len(plan.kept) == len(d)


@given(st.lists(desired_orders, max_size=8), st.lists(desired_orders, max_size=8), tolerances)
def test_reconcile_converges_in_one_step(want, have, tol):
    want, open_orders = tuple(want), as_open(have)

    plan = reconcile(want, open_orders, tol)
    after = apply(plan, open_orders)

    assert reconcile(want, after, tol).empty
    assert len(plan.kept) + len(plan.places) == len(want)
    assert set(plan.cancels).isdisjoint(plan.kept)


def _stands_in(o, d, tol):
    # The definition: same token and side, within the price and size tolerance, and no riskier.
    if (o.outcome, o.side) != (d.outcome, d.side):
        return False
    if abs(o.px - d.px) > tol.px or abs(o.qty - d.qty) > d.qty * tol.qty_pct / 100:
        return False
    unit = (lambda px: px) if o.side is Side.BUY else (lambda px: 10_000 - px)
    return unit(o.px) * o.qty <= unit(d.px) * d.qty


def _reconcile_reference(desired, open_orders, tol):
    # Exact matches first in desired order, then the closest stand-in (first resting on ties).
    live = [o for o in open_orders if not o.cancel_pending]
    used, kept, unmatched, places = set(), [], [], []
    for d in desired:
        same = [
            j
            for j, o in enumerate(live)
            if j not in used and (o.outcome, o.side, o.px, o.qty) == (d.outcome, d.side, d.px, d.qty)
        ]
        if same:
            used.add(same[0])
            kept.append(live[same[0]].client_id)
        else:
            unmatched.append(d)
    for d in unmatched:
        near = [j for j, o in enumerate(live) if j not in used and _stands_in(o, d, tol)]
        if near:
            j = min(near, key=lambda j: (abs(live[j].px - d.px), j))
            used.add(j)
            kept.append(live[j].client_id)
        else:
            places.append(d)
    cancels = tuple(o.client_id for j, o in enumerate(live) if j not in used)
    return cancels, tuple(places), tuple(kept)


@given(
    st.lists(desired_orders, max_size=8),
    st.lists(desired_orders, max_size=8),
    st.sets(st.integers(0, 7)),
    tolerances,
)
@example(  # two stand-ins as close as each other: the first resting one is kept
    want=[DesiredOrder(Outcome.YES, Side.BUY, 4_600, 10 * SHARE)],
    have=[
        DesiredOrder(Outcome.YES, Side.BUY, 4_500, 10 * SHARE),
        DesiredOrder(Outcome.YES, Side.BUY, 4_500, 9 * SHARE),
    ],
    pending=set(),
    tol=Tolerance(px=100, qty_pct=10.0),
)
def test_reconcile_matches_the_reference_from_its_definition(want, have, pending, tol):
    open_orders = as_open(have, pending=pending)

    plan = reconcile(tuple(want), open_orders, tol)

    assert (plan.cancels, plan.places, plan.kept) == _reconcile_reference(want, open_orders, tol)


def _sold(orders, outcome):
    return sum(d.qty for d in orders if d.outcome is outcome and d.side is Side.SELL)


def _admit_reference(places, inv, live_t, cap):
    # Order by order, straight from the definitions: no outcome's worst case (worst_case_losses_usdc10)
    # above max(cap, the worst case with what rests now), and shares never offered twice.
    bound = max(cap * USDC10_PER_USDC6, *worst_case_losses_usdc10(inv, live_t))
    held = {Outcome.YES: inv.yes_qty, Outcome.NO: inv.no_qty}
    offered = {o: sum(q for oo, s, _, q in live_t if oo is o and s is Side.SELL) for o in Outcome}
    admitted, deferred = [], []
    for d in places:
        t = [*live_t, *((a.outcome, a.side, a.px, a.qty) for a in admitted), (d.outcome, d.side, d.px, d.qty)]
        ly, ln = worst_case_losses_usdc10(inv, t)
        fits = ly <= bound and ln <= bound
        if fits and d.side is Side.SELL:
            fits = offered[d.outcome] + d.qty <= held[d.outcome]
        if fits:
            admitted.append(d)
            if d.side is Side.SELL:
                offered[d.outcome] += d.qty
        else:
            deferred.append(d)
    return tuple(admitted), tuple(deferred)


@given(
    inventories(),
    st.lists(desired_orders, max_size=6),
    st.lists(desired_orders, max_size=6),
    st.integers(0, 200_000_000),
)
def test_admit_keeps_caps_and_never_offers_shares_twice(inv, live, places, cap):
    live_t = [(d.outcome, d.side, d.px, d.qty) for d in live]
    bound = max(cap * USDC10_PER_USDC6, *worst_case_losses_usdc10(inv, live_t))

    admitted, deferred = admit(places, inv, live_t, cap)

    ly, ln = worst_case_losses_usdc10(inv, live_t + [(d.outcome, d.side, d.px, d.qty) for d in admitted])
    assert ly <= bound and ln <= bound
    for outcome, held in ((Outcome.YES, inv.yes_qty), (Outcome.NO, inv.no_qty)):
        if _sold(admitted, outcome):  # new sells only for shares no resting sell offers
            assert _sold(live, outcome) + _sold(admitted, outcome) <= held
    key = lambda d: (d.outcome, d.side, d.px, d.qty)  # noqa: E731
    assert sorted(admitted + deferred, key=key) == sorted(places, key=key)
    assert (admitted, deferred) == _admit_reference(places, inv, live_t, cap)


def test_admit_defers_a_sell_of_shares_a_resting_sell_still_offers():
    inv = Inventory(yes_qty=10 * SHARE, cash_usdc6=-4_000_000)
    resting = [(Outcome.YES, Side.SELL, 5_000, 10 * SHARE)]  # cancel pending: it may still fill
    new_sell = DesiredOrder(Outcome.YES, Side.SELL, 4_900, 10 * SHARE)
    new_bid = DesiredOrder(Outcome.YES, Side.BUY, 4_700, 10 * SHARE)

    admitted, deferred = admit([new_sell, new_bid], inv, resting, 10**12)

    assert admitted == (new_bid,) and deferred == (new_sell,)
    assert admit([new_sell], inv, [], 10**12) == ((new_sell,), ())


@given(
    st.lists(desired_orders, max_size=8),
    st.lists(desired_orders, max_size=8),
    st.sets(st.integers(0, 7)),
    tolerances,
    inventories(),
    st.integers(0, 200_000_000),
)
def test_reconcile_admit_is_reconcile_then_admit(want, have, pending, tol, inv, cap):
    open_orders = as_open(have, pending=pending)
    live = [o for o in open_orders if not o.cancel_pending]
    in_flight = [o.as_order() for o in open_orders if o.cancel_pending]

    plan, admitted = reconcile_admit(tuple(want), live, in_flight, tol, inv, cap)

    expected = reconcile(tuple(want), open_orders, tol)
    assert plan == expected
    assert admitted == admit(expected.places, inv, [o.as_order() for o in open_orders], cap)[0]
