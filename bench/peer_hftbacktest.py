"""hftbacktest on the W1M file: the peer figure beside polymm's (``python bench/peer_hftbacktest.py FILE``).

Runs in an interpreter that has ``hftbacktest`` (the ``[peers]`` extra; it pins NumPy < 2.3, so give
it an environment of its own and point ``bench.py --peer-python`` at it). Imports nothing of polymm.

The strategy is a numba-compiled 3-level market maker as close to polymm's ``configs/market_maker.yaml``
as hftbacktest's API makes it: the mid, skewed by 2 cents at 500 shares of inventory; bids from one
cent below it (floored to the tick) and asks from one cent above (ceiled), one tick apart, 10/20/40
shares; post-only (GTX); on every feed event, resting orders off the ladder are cancelled and the
missing levels placed. Zero latency (``constant_order_latency(0, 0)``; the file's ``local_ts`` equal
its ``exch_ts``), the risk-averse queue model, no partial fills, no fees. The function is compiled
on the file's first rows before the timed run ("JIT excluded"). Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from w1m import peak_rss_mb  # bench/w1m.py (this script's folder is on sys.path): numpy only

try:
    from hftbacktest import GTX, LIMIT, BacktestAsset, HashMapMarketDepthBacktest
    from numba import njit
except ImportError as e:  # --help still answers; a run says what is missing
    MISSING: ImportError | None = e

    def njit(f):  # type: ignore[no-untyped-def]
        return f
else:
    MISSING = None

TICK = 0.01
LOT = 0.01


@njit
def market_maker(hbt, counts):  # type: ignore[no-untyped-def]
    asset = 0
    sizes = (10.0, 20.0, 40.0)
    oid = 0
    while True:
        r = hbt.wait_next_feed(False, 1_000_000_000)
        if r == 1:
            break
        hbt.clear_inactive_orders(asset)
        depth = hbt.depth(asset)
        bb = depth.best_bid_tick
        ba = depth.best_ask_tick
        if bb <= 0 or ba <= bb or ba >= 100:
            continue
        pos = hbt.position(asset)
        fair = (bb + ba) / 2.0 - 2.0 * min(max(pos / 500.0, -1.0), 1.0)
        top_bid = min(int(np.floor(fair - 1.0)), ba - 1)
        top_ask = max(int(np.ceil(fair + 1.0)), bb + 1)
        have_bid = np.zeros(3, np.bool_)
        have_ask = np.zeros(3, np.bool_)
        values = hbt.orders(asset).values()
        while True:
            order = values.next()
            if order is None:
                break
            if not order.cancellable:
                continue
            p = order.price_tick
            if order.side == 1:
                i = top_bid - p
                if 0 <= i < 3 and not have_bid[i]:
                    have_bid[i] = True
                    continue
            else:
                i = p - top_ask
                if 0 <= i < 3 and not have_ask[i]:
                    have_ask[i] = True
                    continue
            hbt.cancel(asset, order.order_id, False)
            counts[0] += 1
        for i in range(3):
            if not have_bid[i] and top_bid - i > 0:
                oid += 1
                hbt.submit_buy_order(asset, oid, (top_bid - i) * TICK, sizes[i], GTX, LIMIT, False)
                counts[1] += 1
            if not have_ask[i] and top_ask + i < 100:
                oid += 1
                hbt.submit_sell_order(asset, oid, (top_ask + i) * TICK, sizes[i], GTX, LIMIT, False)
                counts[1] += 1
    counts[2] = hbt.state_values(asset).num_trades
    return True


def backtest(data: str | np.ndarray) -> HashMapMarketDepthBacktest:  # type: ignore[type-arg]
    asset = (
        BacktestAsset()
        .data(data if isinstance(data, list) else [data])
        .linear_asset(1.0)
        .constant_order_latency(0, 0)
        .risk_adverse_queue_model()
        .no_partial_fill_exchange()
        .trading_value_fee_model(0.0, 0.0)
        .tick_size(TICK)
        .lot_size(LOT)
        .last_trades_capacity(0)
    )
    return HashMapMarketDepthBacktest([asset])


def main(path: str) -> dict[str, object]:
    import hftbacktest

    events = len(np.load(path)["data"])
    warm = np.load(path)["data"][:20_000].copy()
    hbt = backtest(warm)
    market_maker(hbt, np.zeros(3, np.int64))  # compile
    hbt.close()
    t0 = time.perf_counter()
    hbt = backtest(path)
    build_s = time.perf_counter() - t0
    counts = np.zeros(3, np.int64)
    t0 = time.perf_counter()
    market_maker(hbt, counts)
    wall = time.perf_counter() - t0
    hbt.close()
    return {
        "engine": f"hftbacktest {getattr(hftbacktest, '__version__', '')}".strip(),
        "events": events,
        "wall_s": round(wall, 3),
        "events_per_s": round(events / wall),
        "build_s": round(build_s, 3),
        "order_actions": int(counts[0] + counts[1]),
        "orders": int(counts[1]),
        "cancels": int(counts[0]),
        "fills": int(counts[2]),
        "peak_rss_mb": peak_rss_mb(),
    }


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + " Prints one JSON line.")
    parser.add_argument("file", help="the W1M .npz file (bench/w1m.py generate FILE writes it)")
    path = parser.parse_args().file
    if MISSING is not None:
        sys.exit(
            f"peer_hftbacktest.py: this interpreter lacks hftbacktest/numba ({MISSING}); run it with one "
            "that has the [peers] extra (bench/bench.py --peer-python ENV/bin/python)"
        )
    print(json.dumps(main(path)))
