from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from core.book import L2Book
from core.units import PX_ONE, Side

ticks = st.sampled_from([10, 100])


class BookMachine(RuleBasedStateMachine):
    """L2Book against a dict model: same levels, same best prices, after any sequence of changes."""

    @initialize(tick=ticks)
    def start(self, tick):
        self.tick = tick
        self.book = L2Book(tick_px=tick)
        self.model = {Side.BUY: {}, Side.SELL: {}}

    def _px(self, i):
        return (i % (PX_ONE // self.tick + 1)) * self.tick

    @rule(
        side=st.sampled_from(list(Side)),
        i=st.integers(0, 1000),
        qty=st.integers(0, 10_000),
        ts=st.integers(0, 10**6),
    )
    def set_level(self, side, i, qty, ts):
        px = self._px(i)
        before = (
            self.book.bid_px,
            self.book.bids[max(self.book.bid_px, 0)],
            self.book.ask_px,
            self.book.asks[min(self.book.ask_px, PX_ONE)],
        )

        moved = self.book.set_level(side, px, qty, ts)

        after = (
            self.book.bid_px,
            self.book.bids[max(self.book.bid_px, 0)],
            self.book.ask_px,
            self.book.asks[min(self.book.ask_px, PX_ONE)],
        )
        if qty:
            self.model[side][px] = qty
        else:
            self.model[side].pop(px, None)
        if before != after:
            assert moved  # a top-of-book change is always reported

    @rule(
        bids=st.dictionaries(st.integers(0, 100), st.integers(1, 1000), max_size=6),
        asks=st.dictionaries(st.integers(0, 100), st.integers(1, 1000), max_size=6),
    )
    def snapshot(self, bids, asks):
        b = {self._px(i): q for i, q in bids.items()}
        a = {self._px(i): q for i, q in asks.items()}
        self.book.apply_snapshot(tuple(b.items()), tuple(a.items()), 0)
        self.model = {Side.BUY: dict(b), Side.SELL: dict(a)}

    @rule()
    def clear(self):
        self.book.clear()
        self.model = {Side.BUY: {}, Side.SELL: {}}

    @invariant()
    def same_levels_best_first(self):
        assert self.book.levels(Side.BUY) == tuple(sorted(self.model[Side.BUY].items(), reverse=True))
        assert self.book.levels(Side.SELL) == tuple(sorted(self.model[Side.SELL].items()))

    @invariant()
    def view_matches_model_top(self):
        v = self.book.view()
        bids, asks = self.model[Side.BUY], self.model[Side.SELL]
        assert (v.bid_px, v.bid_qty) == ((max(bids), bids[max(bids)]) if bids else (0, 0))
        assert (v.ask_px, v.ask_qty) == ((min(asks), asks[min(asks)]) if asks else (0, 0))


TestBookMachine = BookMachine.TestCase


def test_book_finer_prices_after_tick_change_are_still_found():
    book = L2Book(tick_px=100)
    book.apply_snapshot(((4_700, 100),), ((4_800, 100),), 0)

    book.set_level(Side.BUY, 4_650, 50, 1)  # finer than the 0.01 grid
    book.set_level(Side.BUY, 4_700, 0, 2)

    assert book.best_bid() == (4_650, 50)


@given(st.lists(st.tuples(st.integers(1, 99), st.integers(1, 1000)), max_size=20))
def test_book_snapshot_levels_are_best_first_whatever_the_input_order(levels):
    book = L2Book(tick_px=100)
    bids = tuple((i * 100, q) for i, q in levels)

    book.apply_snapshot(bids, (), 0)

    expected = dict(bids)
    assert book.levels(Side.BUY) == tuple(sorted(expected.items(), reverse=True))
