"""Markouts against a reference with a queue per horizon (the rule as first written)."""

from collections import deque

from hypothesis import given
from hypothesis import strategies as st

from core.markets import MarketInfo
from core.units import NEVER_NS, NS_PER_S, PX_ONE, Side
from venue.exchange import SimExchange
from venue.markouts import HORIZONS_S, Markouts
from venue.structs import Fill


class _RefMarkouts:
    def __init__(self) -> None:
        self.pending = [deque() for _ in HORIZONS_S]
        self.sum2 = [0] * len(HORIZONS_S)
        self.qty = [0] * len(HORIZONS_S)
        self.due = NEVER_NS
        self.last_mid2 = -1

    def start(self, ts_ns, fill_index):
        for k, h in enumerate(HORIZONS_S):
            self.pending[k].append((ts_ns + h * NS_PER_S, fill_index))
        self.due = min(self.due, ts_ns + HORIZONS_S[0] * NS_PER_S)

    def update(self, ts_ns, ex):
        b = ex.book
        if b.bid_px < 0 or b.ask_px > PX_ONE:
            return
        mid2 = b.bid_px + b.ask_px
        self.last_mid2 = mid2
        nxt = NEVER_NS
        for k, dq in enumerate(self.pending):
            while dq and dq[0][0] <= ts_ns:
                f = ex.fills[dq.popleft()[1]]
                self.sum2[k] += f.yes_side * (mid2 - 2 * f.yes_px) * f.qty
                self.qty[k] += f.qty
            if dq:
                nxt = min(nxt, dq[0][0])
        self.due = nxt


steps = st.lists(
    st.one_of(
        # a fill at this step (times may go back: the rule keeps the order started)
        st.tuples(st.just("fill"), st.integers(-2, 30), st.sampled_from(list(Side)), st.integers(1, 9_999)),
        # time passes and the book shows a mid (or is one-sided: -1)
        st.tuples(st.just("tick"), st.integers(0, 90), st.integers(-1, 9_000), st.integers(1, 999)),
    ),
    max_size=60,
)


@given(steps)
def test_markouts_equal_a_queue_per_horizon(steps):
    mk, ref = Markouts(), _RefMarkouts()
    # A real venue (the compiled build checks the type), its book's best prices set by hand.
    ex = SimExchange(MarketInfo(market="m", yes_token="y", no_token="n", tick_px=1))
    book = ex.book
    t = 0
    for kind, dt_s, a, b in steps:
        t += dt_s * NS_PER_S // 2
        if kind == "fill":
            ex.fills.append(
                Fill(
                    ts_ns=t,
                    mid2=0,
                    yes_side=a,
                    yes_px=b,
                    qty=1_000 * b,
                    fee_usdc6=0,
                    liquidity="maker",
                    cash_usdc6=0,
                )
            )
            mk.start(t, len(ex.fills) - 1)
            ref.start(t, len(ex.fills) - 1)
        else:
            book.bid_px, book.ask_px = (a, a + b) if a >= 0 else (-1, PX_ONE + 1)
            if t >= mk.due:
                mk.update(t, ex)
            if t >= ref.due:
                ref.update(t, ex)
        assert (mk.due, mk.sum2, mk.qty, mk.last_mid2) == (ref.due, ref.sum2, ref.qty, ref.last_mid2)
