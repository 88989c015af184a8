"""Small deterministic tapes for runner and exchange tests (independent of the shipped sources).

Book levels and trades come in any 1e-6-share size, as on the venue (fills of odd sizes included).
"""

from __future__ import annotations

import random

from core.markets import MarketInfo
from core.messages import BookSnapshot, MarketResolved
from core.units import QTY_ONE, Outcome, Side
from sim.tape import MarketTape

SHARE = QTY_ONE


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
        min_qty=5 * SHARE,
        fee_rate_ppm=40_000,
    )
    tape = MarketTape(info)
    ts = 10**18
    bids = {mid - 100 * k: 200 * SHARE for k in range(1, 6)}
    asks = {mid + 100 * k: 200 * SHARE for k in range(1, 6)}
    tape.special(
        BookSnapshot(
            market=info.market,
            outcome=Outcome.YES,
            ts_ns=ts,
            bids=tuple(sorted(bids.items(), reverse=True)),
            asks=tuple(sorted(asks.items())),
            tick_px=100,
            min_qty=5 * SHARE,
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
            qty = rng.randrange(5 * SHARE, 300 * SHARE) if rng.random() < 0.8 or len(book) < 3 else 0
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
            q = min(book[px], rng.randrange(5 * SHARE, 150 * SHARE))
            tape.trade(ts, Side.BUY if buy else Side.SELL, px, q)
            book[px] -= q
            if book[px] == 0 and len(book) > 1:
                del book[px]
                tape.level(ts, Side.SELL if buy else Side.BUY, px, 0)
            else:
                book[px] = max(book[px], SHARE)
                tape.level(ts, Side.SELL if buy else Side.BUY, px, book[px])
    if resolve is not None:
        tape.special(MarketResolved(market=info.market, ts_ns=ts + 1, yes_won=resolve))
    return tape
