"""Small deterministic tapes for runner and exchange tests (independent of the shipped sources)."""

from __future__ import annotations

import random

from core.markets import MarketInfo
from core.messages import BookSnapshot, MarketResolved
from core.units import Outcome, Side
from sim.tape import MarketTape


def random_walk_tape(
    idx: int, n: int, seed: int, resolve: bool | None = True, mid: int = 5_000
) -> MarketTape:
    """A two-sided book around a drifting mid with background updates and takers hitting the touch."""
    rng = random.Random(f"{seed}:{idx}")
    info = MarketInfo(
        market=f"m{idx}",
        yes_token=f"y{idx}",
        no_token=f"n{idx}",
        tick_px=100,
        min_qty=500,
        fee_rate_ppm=40_000,
    )
    tape = MarketTape(info)
    ts = 10**18
    bids = {mid - 100 * k: 20_000 for k in range(1, 6)}
    asks = {mid + 100 * k: 20_000 for k in range(1, 6)}
    tape.special(
        BookSnapshot(
            market=info.market,
            outcome=Outcome.YES,
            ts_ns=ts,
            bids=tuple(sorted(bids.items(), reverse=True)),
            asks=tuple(sorted(asks.items())),
            tick_px=100,
            min_qty=500,
        )
    )
    for _ in range(n):
        ts += rng.randrange(1_000_000, 40_000_000)
        bb, ba = max(bids), min(asks)
        r = rng.random()
        if r < 0.7:
            if rng.random() < 0.5:
                px = rng.randrange(max(1, bb // 100 - 4), ba // 100) * 100
                book, side = bids, Side.BUY
            else:
                px = rng.randrange(bb // 100 + 1, min(99, ba // 100 + 4) + 1) * 100
                book, side = asks, Side.SELL
            qty = rng.randrange(500, 30_000) if rng.random() < 0.8 or len(book) < 3 else 0
            if qty == 0 and px in (bb, ba) and len(book) < 2:
                continue
            if qty:
                book[px] = qty
            else:
                book.pop(px, None)
            tape.level(ts, side, px, qty)
        else:
            buy = rng.random() < 0.5
            book = asks if buy else bids
            px = min(book) if buy else max(book)
            q = min(book[px], rng.randrange(500, 15_000))
            tape.trade(ts, Side.BUY if buy else Side.SELL, px, q)
            book[px] -= q
            if book[px] == 0 and len(book) > 1:
                del book[px]
                tape.level(ts, Side.SELL if buy else Side.BUY, px, 0)
            else:
                book[px] = max(book[px], 100)
                tape.level(ts, Side.SELL if buy else Side.BUY, px, book[px])
    if resolve is not None:
        tape.special(MarketResolved(market=info.market, ts_ns=ts + 1, yes_won=resolve))
    return tape
