"""Tick-to-quote latency: a market-channel frame in, the order handed to the gateway out.

50 markets, each with its real ``MarketActor`` and ``MarketSession``; a feeder thread decodes
``price_change`` frames (the venue's current format, both tokens per message) with the production
parser and tells the actors through the ``Router`` at a paced 5,000 messages/s in total. The port
stands in for the gateway's ``ClobExchangePort`` (whose ``submit`` is one ``tell``) and records the
time a command batch is handed over. Only quotes caused by the message being handled count
(with the shipped 250 ms requote throttle; decode time is included).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from actors.market import GetStatus, MarketActor, MarketBatch
from actors.session import MarketSession
from actors.supervisor import Router
from adapters.paper import DryRunPort
from adapters.polymarket.parse import AssetMap, decode_market_frame
from app.bootstrap import tune_gc_for_latency
from app.configfile import load_config
from core.markets import MarketInfo
from core.messages import BookDelta, BookSnapshot, Command
from core.quoting import quote_params
from core.units import Outcome

_ENC = msgspec.json.Encoder()
NO = Outcome.NO


class TimedPort(DryRunPort):
    """The gateway stand-in: timestamps each hand-over, then acknowledges like a venue would.

    The hand-over is attributed to the message being handled; acknowledgements (accepted,
    cancelled) go back through the actor's mailbox, as the gateway's reports do.
    """

    def __init__(self, market: str, router: Router, t0_of: dict[int, int], out: list[int]) -> None:
        super().__init__(market, router.tell, _Clock())
        self.current: object = None
        self.t0_of = t0_of
        self.out = out

    def submit(self, commands: Sequence[Command]) -> None:
        t1 = time.perf_counter_ns()
        t0 = self.t0_of.get(id(self.current))
        if t0 is not None:
            self.out.append(t1 - t0)
        super().submit(commands)


class _Clock:
    def now_ns(self) -> int:
        return time.time_ns()


class TimedActor(MarketActor):
    """A MarketActor that tells its port which message it is handling."""

    def on_receive(self, message: Any) -> Any:
        self.session.port.current = message  # type: ignore[attr-defined]
        return super().on_receive(message)


def _frame(m: MarketInfo, changes: list[tuple[int, int, str]], ts_ms: int) -> bytes:
    # One price_change message: each YES level change and its mirror on the NO book.
    entries = []
    for px_milli, size, side in changes:
        entries.append(
            {
                "asset_id": m.yes_token,
                "price": f"0.{px_milli:03d}",
                "size": str(size),
                "side": side,
                "hash": "h",
                "best_bid": "0",
                "best_ask": "0",
            }
        )
        entries.append(
            {
                "asset_id": m.no_token,
                "price": f"0.{1000 - px_milli:03d}",
                "size": str(size),
                "side": "SELL" if side == "BUY" else "BUY",
                "hash": "h",
                "best_bid": "0",
                "best_ask": "0",
            }
        )
    return _ENC.encode(
        {"market": m.market, "event_type": "price_change", "timestamp": str(ts_ms), "price_changes": entries}
    )


def run(markets_n: int = 50, rate_per_s: int = 5_000, seconds: float = 8.0, seed: int = 5) -> dict[str, Any]:
    """Run the benchmark and return median/p99 in microseconds."""
    cfg = load_config("configs/market_maker.yaml")
    # The shipped config (250 ms requote throttle), but no price tolerance, so that a requote the
    # message triggers always hands orders over.
    params = msgspec.structs.replace(quote_params(cfg), max_book_age_ns=0, requote_px_tolerance_ticks=0)
    rng = random.Random(seed)
    markets = [
        MarketInfo(
            market=f"0xm{i:02d}", yes_token=f"{10**20 + 2 * i}", no_token=f"{10**20 + 2 * i + 1}", tick_px=10
        )
        for i in range(markets_n)
    ]
    assets = AssetMap.from_markets(markets)
    router = Router()
    t0_of: dict[int, int] = {}
    latencies: list[int] = []
    now = time.time_ns()

    class Clock:
        def now_ns(self) -> int:
            return time.time_ns()

    sink_lines: list[bytes] = []

    class Sink:
        def record(self, kind: str, ts_ns: int, market: str, payload: object) -> None:
            sink_lines.append(b"")

    refs = []
    for m in markets:
        port = TimedPort(m.market, router, t0_of, latencies)
        s = MarketSession(m, params, port, Clock(), Sink())
        ref = TimedActor.start(s)
        router.set(m.market, ref)
        refs.append(ref)
        ref.tell(
            BookSnapshot(
                market=m.market,
                outcome=Outcome.YES,
                ts_ns=now,
                bids=((4_500, 50_000), (4_490, 50_000)),
                asks=((4_540, 50_000), (4_550, 50_000)),
                tick_px=10,
                min_qty=500,
            )
        )
    for ref in refs:
        ref.ask(GetStatus(), timeout=5)
    n = int(rate_per_s * seconds)
    frames = []
    center = dict.fromkeys(range(markets_n), 452)  # YES mid in 0.001 units; the touch is 2 ticks either side
    for k in range(n):
        i = k % markets_n
        m = markets[i]
        # Every message moves the touch one tick: the new best bid and ask appear, the old ones go.
        old = center[i]
        new = min(max(old + rng.choice((-1, 1)), 300), 700)
        center[i] = new
        size = rng.randrange(100, 2_000) * 100
        # The new touch appears, then the old one goes (never a crossed or one-sided book in between).
        changes = [(new - 2, size, "BUY"), (new + 2, size, "SELL"), (old - 2, 0, "BUY"), (old + 2, 0, "SELL")]
        frames.append((m, _frame(m, changes, now // 1_000_000 + k)))
    interval = 1.0 / rate_per_s
    tune_gc_for_latency()  # as TradingEngine.start does
    start = time.perf_counter()
    for k, (m, data) in enumerate(frames):
        wait = start + k * interval - time.perf_counter()
        if wait > 0:
            time.sleep(wait)  # a socket read would block here too, releasing the GIL
        t0 = time.perf_counter_ns()
        # As the live engine does: one message per market per frame, NO-book mirrors dropped.
        evs = tuple(
            e for e in decode_market_frame(data, assets) if not (isinstance(e, BookDelta) and e.outcome is NO)
        )
        batch = MarketBatch(evs)
        t0_of[id(batch)] = t0
        router.tell(m.market, batch)
        if len(t0_of) > 100_000:
            t0_of.clear()
    elapsed = time.perf_counter() - start
    for ref in refs:
        ref.ask(GetStatus(), timeout=5)
        ref.stop()
    latencies.sort()
    return {
        "markets": markets_n,
        "messages": n,
        "achieved_msgs_per_s": round(n / elapsed),
        "quotes_measured": len(latencies),
        "median_us": round(latencies[len(latencies) // 2] / 1000, 1) if latencies else None,
        "p99_us": round(latencies[int(len(latencies) * 0.99)] / 1000, 1) if latencies else None,
        "mean_us": round(statistics.fmean(latencies) / 1000, 1) if latencies else None,
    }


if __name__ == "__main__":
    print(run())
