"""W1M: issue #13's reference workload, in hftbacktest's own event format, for polymm and for hftbacktest.

``generate`` writes the file: 1,000,000 rows of hftbacktest's ``event_dtype`` (``ev``, ``exch_ts``,
``local_ts``, ``px``, ``qty``, ``order_id``, ``ival``, ``fval``; ``py-hftbacktest/hftbacktest/types.py``),
one instrument, tick 0.01, seed 7, every row valid for both the exchange and the local side
(``local_ts == exch_ts``: no feed latency). It opens with a snapshot (a clear of each side, then ten
levels a side); then, step by step (a step every 1 ms on average):

* ~6.6% of steps a trade at the best bid or ask (a random side), of less than the level holds (it
  stays, at 0.01 share or more), followed at the same timestamp by the depth change it implies
  (the level's new total): trades are ~6% of the rows;
* ~1% of steps the book jumps 1 (60%), 2 (25%) or 3 ticks up or down at once (a random walk of the
  mid that reflects at 0.11 and 0.88, so over the file it wanders across the grid): per tick, the
  best level on the side it moves into goes, a new best level appears on the other, and the far
  ends follow (four depth rows a tick);
* otherwise one level's total changes (closer to the touch more often), never to zero.

Sizes are whole cents of a share (1.00 to 500.99), prices whole ticks; both convert exactly.
Only ``random.Random(7).random()`` is drawn, so the file is the same on any Python and NumPy.

``run_polymm`` runs polymm's simulator on it (inline engine, ``configs/market_maker.yaml`` with the
volatility pull off, zero latency, the log hashed), ``run_hftbacktest`` hftbacktest on the same file
with a comparable 3-level market maker. ``bench/bench.py`` calls both, each in a fresh process.
"""

from __future__ import annotations

import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

EVENTS = 1_000_000
SEED = 7
TICK = 0.01
LEVELS = 10
P_TRADE = 0.0666  # per step; with the shifts' rows (four a tick), trades are ~6% of the rows
P_SHIFT = 0.01
MIN_BID, MAX_BID = 11, 88  # ticks: the best bid stays in [0.11, 0.88], every level in [0.01, 0.99]
# hftbacktest's event flags and kinds (types.py).
EXCH_EVENT = 1 << 31
LOCAL_EVENT = 1 << 30
BUY_EVENT = 1 << 29
SELL_EVENT = 1 << 28
DEPTH_EVENT = 1
TRADE_EVENT = 2
DEPTH_CLEAR_EVENT = 3
DEPTH_SNAPSHOT_EVENT = 4
EVENT_DTYPE = np.dtype(
    [
        ("ev", "u8"),
        ("exch_ts", "i8"),
        ("local_ts", "i8"),
        ("px", "f8"),
        ("qty", "f8"),
        ("order_id", "u8"),
        ("ival", "i8"),
        ("fval", "f8"),
    ],
    align=True,
)


def generate(n: int = EVENTS, seed: int = SEED) -> np.ndarray[Any, Any]:
    """The W1M event array (see the module docstring)."""
    rnd = random.Random(seed).random
    both = EXCH_EVENT | LOCAL_EVENT
    ev: list[int] = []
    ts: list[int] = []
    px: list[int] = []  # ticks
    qty: list[int] = []  # 1e-2 shares

    def size() -> int:
        return 100 + int(rnd() * 50_000)

    t = 1_700_000_000_000_000_000
    bid = 50
    bids = {p: size() for p in range(bid - LEVELS + 1, bid + 1)}
    asks = {p: size() for p in range(bid + 1, bid + 1 + LEVELS)}
    ev += [DEPTH_CLEAR_EVENT | BUY_EVENT | both, DEPTH_CLEAR_EVENT | SELL_EVENT | both]
    ts += [t, t]
    px += [0, 100]
    qty += [0, 0]
    for p in sorted(bids, reverse=True):
        ev.append(DEPTH_SNAPSHOT_EVENT | BUY_EVENT | both)
        ts.append(t)
        px.append(p)
        qty.append(bids[p])
    for p in sorted(asks):
        ev.append(DEPTH_SNAPSHOT_EVENT | SELL_EVENT | both)
        ts.append(t)
        px.append(p)
        qty.append(asks[p])
    bid_depth = DEPTH_EVENT | BUY_EVENT | both
    ask_depth = DEPTH_EVENT | SELL_EVENT | both

    def row(e: int, p: int, q: int) -> None:
        ev.append(e)
        ts.append(t)
        px.append(p)
        qty.append(q)

    while len(ev) < n:
        t += 1 + int(rnd() * 1_999_999)
        u = rnd()
        if u < P_TRADE:
            if rnd() < 0.5:  # a buyer lifts the best ask
                a = bid + 1
                q = 1 + int(rnd() * (asks[a] - 1))
                row(TRADE_EVENT | BUY_EVENT | both, a, q)
                asks[a] -= q
                row(ask_depth, a, asks[a])
            else:
                q = 1 + int(rnd() * (bids[bid] - 1))
                row(TRADE_EVENT | SELL_EVENT | both, bid, q)
                bids[bid] -= q
                row(bid_depth, bid, bids[bid])
        elif u < P_TRADE + P_SHIFT:
            up = rnd() < 0.5
            v = rnd()
            for _ in range(1 if v < 0.6 else 2 if v < 0.85 else 3):  # a jump of 1, 2 or 3 ticks
                if bid >= MAX_BID:
                    up = False
                elif bid <= MIN_BID:
                    up = True
                if up:  # the best ask goes, a new best bid appears; the far ends follow
                    a = bid + 1
                    del asks[a]
                    row(ask_depth, a, 0)
                    bids[a] = size()
                    row(bid_depth, a, bids[a])
                    far_ask = a + LEVELS
                    asks[far_ask] = size()
                    row(ask_depth, far_ask, asks[far_ask])
                    far_bid = bid - LEVELS + 1
                    del bids[far_bid]
                    row(bid_depth, far_bid, 0)
                    bid = a
                else:
                    del bids[bid]
                    row(bid_depth, bid, 0)
                    asks[bid] = size()
                    row(ask_depth, bid, asks[bid])
                    far_bid = bid - LEVELS
                    bids[far_bid] = size()
                    row(bid_depth, far_bid, bids[far_bid])
                    far_ask = bid + LEVELS
                    del asks[far_ask]
                    row(ask_depth, far_ask, 0)
                    bid -= 1
        else:
            off = int(rnd() * rnd() * LEVELS)  # nearer the touch more often
            if rnd() < 0.5:
                p = bid - off
                bids[p] = size()
                row(bid_depth, p, bids[p])
            else:
                p = bid + 1 + off
                asks[p] = size()
                row(ask_depth, p, asks[p])
    out = np.zeros(n, dtype=EVENT_DTYPE)
    out["ev"] = np.array(ev[:n], dtype=np.uint64)
    out["exch_ts"] = np.array(ts[:n], dtype=np.int64)
    out["local_ts"] = out["exch_ts"]
    out["px"] = np.array(px[:n], dtype=np.int64) / 100
    out["qty"] = np.array(qty[:n], dtype=np.int64) / 100
    return out


def ensure_file(path: Path) -> Path:
    """Write the W1M file at ``path`` (an uncompressed ``.npz``, key ``data``) unless it is there."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, data=generate())
        tmp.replace(path)
    return path


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (2**20 bytes): its own, not its parent's.

    Linux's ``VmHWM`` (the high-water mark of the memory this process has mapped since it started).
    Not ``ru_maxrss``: Linux carries it across fork and exec, so a child reports at least the RSS its
    parent had when it spawned the child (a bench harness that generated the W1M file itself made
    every run it started report its 210 MB). Elsewhere, ``ru_maxrss`` (KB; bytes on macOS).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def run_load(path: Path) -> dict[str, Any]:
    """Load the file into polymm's tape and nothing else: the loader's time and peak RSS."""
    from sim.sources.hbt_npz import HbtNpzSource, load

    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    tapes = load(HbtNpzSource(path=str(path), tick_px=100, market="w1m"))
    load_s = time.perf_counter() - t0
    return {
        "load_s": round(load_s, 3),
        "events": sum(len(t) for t in tapes),
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_load_mb": rss0,
    }


def run_polymm(path: Path, engine: str = "inline") -> dict[str, Any]:
    """polymm's simulator on W1M: load, then run (the log hashed, inputs not logged)."""

    import msgspec

    from app.configfile import load_config
    from core.quoting import quote_params
    from sim.runner import Runner, RunSettings
    from sim.sources.hbt_npz import HbtNpzSource, load
    from sim.structs import Latency

    cfg = load_config(ROOT / "configs" / "market_maker.yaml")
    vol = msgspec.structs.replace(
        cfg.quoting.volatility, pull_threshold_px=1_000_000, resume_threshold_px=999_999
    )
    cfg = msgspec.structs.replace(cfg, quoting=msgspec.structs.replace(cfg.quoting, volatility=vol))
    zero = Latency(feed_ms=0, order_ms=0, response_ms=0)
    t0 = time.perf_counter()
    tapes = load(HbtNpzSource(path=str(path), tick_px=100, market="w1m"))
    load_s = time.perf_counter() - t0
    rss_loaded = peak_rss_mb()
    runner = Runner(tapes, quote_params(cfg), RunSettings(latency=zero), seed=SEED)
    t0 = time.perf_counter()
    runner.run(engine)  # type: ignore[arg-type]
    digest = runner.log.digest()  # (the log's columns and their hash: part of the run's cost)
    wall = time.perf_counter() - t0
    stats = [lane.session.stats for lane in runner.lanes]
    return {
        "engine": engine,
        "events": runner.events_total,
        "wall_s": round(wall, 3),
        "events_per_s": round(runner.events_total / wall),
        "load_s": round(load_s, 3),
        "rss_after_load_mb": rss_loaded,
        "order_actions": sum(s.places + s.cancels for s in stats),
        "orders": sum(s.places for s in stats),
        "cancels": sum(s.cancels for s in stats),
        "fills": sum(len(lane.exchange.fills) for lane in runner.lanes),
        "decide_calls": sum(s.decide_calls for s in stats),
        "digest": digest,
        "peak_rss_mb": peak_rss_mb(),
    }


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] + " Prints one JSON line (``bench/bench.py`` runs it).",
    )
    parser.add_argument(
        "what",
        choices=("generate", "load", "inline", "actors"),
        help="generate: write FILE if it is missing; load: time loading it (seconds, peak RSS in MB); "
        "inline/actors: run polymm's simulator on it with that engine (events/s, order actions, fills, "
        "peak RSS in MB, digest)",
    )
    parser.add_argument("file", type=Path, help="the W1M .npz file (bench/out/w1m.npz in just bench)")
    a = parser.parse_args()
    if a.what == "generate":
        ensure_file(a.file)
        print(json.dumps({"path": str(a.file)}))
    elif a.what == "load":
        print(json.dumps(run_load(a.file)))
    else:
        print(json.dumps(run_polymm(a.file, a.what)))
