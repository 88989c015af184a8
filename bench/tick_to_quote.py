"""Tick-to-quote latency on loopback: a market-channel message in, the order handed to the gateway out.

A venue stand-in in another process (its own GIL, as the venue's would be) serves the market channel
on 127.0.0.1 over a real WebSocket: a ``book`` per token on subscribe, then ``price_change`` messages
paced at 5,000 per second in total over 50 markets. Our side is the production path: the
``MarketWsClient`` on its own event-loop thread (websockets, then ``_on_message``: msgspec decode,
parse, the client's book replica and epoch check), the engine's ``FrameDispatcher`` (one
``MarketBatch`` per market, told through the ``Router``), the market's ``MarketActor`` and its
``MarketSession`` (book, decision, reconcile, exposure check, commands), built as
``app.bootstrap.TradingEngine`` builds them: the sessions read the actors' loop's ``InputClock``
(entered by the feed around each frame: one clock reading per input) and keep the engine's latency
histogram. The port stands in for the gateway's ``ClobExchangePort`` (whose ``submit`` is one
``tell``): it records when a command batch is handed over, then acknowledges like a venue.
Decisions and orders are logged to a JSON-lines file as in production (after the hand-over).

The figure is the in-process part: from the start of decoding the message that changed the book to
the hand-over of the orders it caused. Only quotes caused by the message being handled count, with
the shipped 250 ms requote throttle and no price tolerance (each requote replaces the ladder).

Messages have the venue's shape (``docs/polymarket-api.md``; recorded: ``tests/fixtures/polymarket/
stream_book_price_change_burst_2026-09.json``): 77-digit token ids, a hash per entry, and one level
change per message with its mirror on the NO token; half of the sizes have decimals. About two in
three messages change the top of the YES book. ``changes_per_msg=4`` is a heavier stress shape: every
message moves the touch one tick (four level changes, eight entries).
"""

from __future__ import annotations

import contextlib
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import pykka
from polymarket import PRODUCTION

from actors.dispatch import FrameDispatcher
from actors.loop import ActorLoop, InputClock
from actors.market import GetStatus, LatencyHistogram, LoopMarketActor, MarketActor
from actors.session import MarketSession
from actors.supervisor import Router
from adapters.clock import LiveClock
from adapters.paper import DryRunPort
from adapters.polymarket import sdk
from adapters.polymarket.orders import OrderSigner
from adapters.polymarket.parse import AssetMap
from adapters.polymarket.ws_market import MarketWsClient, MarketWsConfig
from app.bootstrap import JsonlFileSink, tune_gc_for_latency
from app.configfile import load_config
from core.markets import MarketInfo
from core.messages import Command, Place
from core.ports import Clock
from core.quoting import quote_params
from core.units import Outcome

_ENC = msgspec.json.Encoder()


class TimedPort(DryRunPort):
    """The gateway stand-in: timestamps the first hand-over a message causes, then acknowledges.

    Acknowledgements (accepted, cancelled) go back through the actor's mailbox, as the gateway's
    reports do. With a ``signer``, the commands are also told to it, as ``ClobExchangePort`` tells
    the order gateway.
    """

    def __init__(
        self,
        market: str,
        router: Router,
        out: list[int],
        clock: Clock,
        signer: pykka.ActorRef[Any] | None = None,
    ) -> None:
        super().__init__(market, router.tell, clock)
        #: perf_counter_ns when the message being handled was first decoded (None: not a feed message).
        self.t0: int | None = None
        self.out = out
        self.signer = signer

    def submit(self, commands: Sequence[Command]) -> None:
        t1 = time.perf_counter_ns()
        if self.t0 is not None:
            self.out.append(t1 - self.t0)
            self.t0 = None
        if self.signer is not None:
            self.signer.tell(tuple(commands))
        super().submit(commands)


class SigningGateway(pykka.ThreadingActor):
    """The live gateway's CPU work without its network: signs every order it is handed (checked)."""

    def __init__(self, tokens: dict[str, str]) -> None:
        super().__init__()
        self.signer = OrderSigner("0x" + "2b" * 32, sdk.contracts(PRODUCTION))
        self.tokens = tokens
        self.signed = 0

    def on_receive(self, message: Any) -> Any:
        if message == "signed":
            return self.signed
        for c in message:
            if isinstance(c, Place):
                token = self.tokens[c.market] if c.outcome is Outcome.YES else self.tokens["NO " + c.market]
                self.signer.sign(c, token, 10, neg_risk=False, protocol="v1")
                self.signed += 1
        return None


class _Timed:
    """Tells the port when the message being handled was first decoded."""

    t0_of: dict[int, int]
    session: MarketSession

    def on_receive(self, message: Any) -> Any:
        # Popped while the message is alive, so a later object at the same address is never matched.
        self.session.port.t0 = self.t0_of.pop(id(message), None)  # type: ignore[attr-defined]
        return super().on_receive(message)  # type: ignore[misc]


class TimedLoopActor(_Timed, LoopMarketActor):
    """As in live trading: the market actors run on the feed's event-loop thread."""


class TimedThreadActor(_Timed, MarketActor):
    """The alternative measured for comparison: a thread per market actor."""


class TimedRouter(Router):
    """Remembers, per batch told, the decode start of the frame being dispatched."""

    def __init__(self, t0_of: dict[int, int]) -> None:
        super().__init__()
        self.t0_of = t0_of
        self.current_t0 = 0

    def tell(self, market: str, message: object) -> bool:
        if self.current_t0:
            self.t0_of[id(message)] = self.current_t0  # before the actor can see it
        return super().tell(market, message)


def _token(rng: random.Random) -> str:
    return str(rng.randrange(10**76, 10**77))  # the venue's token ids are 77-digit numbers


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _size(rng: random.Random) -> str:
    whole = rng.randrange(5, 5_000)
    return str(whole) if rng.random() < 0.5 else f"{whole}.{rng.randrange(1, 100):02d}"


class _Book:
    """The bench's picture of one YES book in 0.001 units, stepping like a busy Polymarket book."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        mid = rng.randrange(350, 650)
        self.bids = {mid - 2 - i: _size(rng) for i in range(8)}
        self.asks = {mid + 2 + i: _size(rng) for i in range(8)}

    def step(self) -> list[tuple[int, str, str]]:
        """One level change ``(px, size, side)`` on the YES book (size "0" deletes)."""
        rng = self.rng
        buy = rng.random() < 0.5
        levels, other = (self.bids, self.asks) if buy else (self.asks, self.bids)
        best = max(levels) if buy else min(levels)
        inside = best + 1 if buy else best - 1
        gap = abs((min(other) if buy else max(other)) - inside)
        u = rng.random()
        if u < 0.25 and gap >= 2 and 50 < inside < 950:  # a new best level: the touch moves in
            px, size = inside, _size(rng)
        elif u < 0.5 and len(levels) > 4:  # the best level goes: the touch moves out
            px, size = best, "0"
        elif u < 0.7:  # the best level's size changes
            px, size = best, _size(rng)
        else:  # a deeper level changes, or a new one appears behind the book
            deeper = sorted(levels, reverse=buy)[1:]
            if deeper and (len(levels) > 12 or rng.random() < 0.7):
                px, size = rng.choice(deeper), _size(rng)
            else:
                px, size = (min(levels) - 1 if buy else max(levels) + 1), _size(rng)
        if size == "0":
            del levels[px]
        else:
            levels[px] = size
        return [(px, size, "BUY" if buy else "SELL")]

    def move_touch(self) -> list[tuple[int, str, str]]:
        """The stress shape: the touch moves one tick, new levels first (never crossed in between)."""
        bid, ask = max(self.bids), min(self.asks)
        d = self.rng.choice((-1, 1)) if 300 < bid < ask < 700 else (1 if bid <= 300 else -1)
        changes = [(bid + d, _size(self.rng), "BUY"), (ask + d, _size(self.rng), "SELL")]
        changes += (
            [(bid, "0", "BUY"), (ask, "0", "SELL")] if d > 0 else [(ask, "0", "SELL"), (bid, "0", "BUY")]
        )
        for px, size, side in changes:
            levels = self.bids if side == "BUY" else self.asks
            if size == "0":
                levels.pop(px, None)
            else:
                levels[px] = size
        return changes


def _px(milli: int) -> str:
    return f"{milli / 1000:.3f}".rstrip("0")


def _price_change(
    m: MarketInfo, changes: list[tuple[int, str, str]], ts_ms: int, rng: random.Random
) -> bytes:
    # Each YES level change and its mirror on the NO book, as the venue sends them.
    entries = []
    for px, size, side in changes:
        for token, p, s in (
            (m.yes_token, px, side),
            (m.no_token, 1000 - px, "SELL" if side == "BUY" else "BUY"),
        ):
            entries.append(
                {
                    "asset_id": token,
                    "price": _px(p),
                    "size": size,
                    "side": s,
                    "hash": _hex(rng, 40),
                    "best_bid": "0.5",
                    "best_ask": "0.51",
                }
            )
    return _ENC.encode(
        {"market": m.market, "price_changes": entries, "timestamp": str(ts_ms), "event_type": "price_change"}
    )


def _book_frame(m: MarketInfo, book: _Book, token: str, no: bool, ts_ms: int, rng: random.Random) -> bytes:
    # Levels best last, as the venue lists them; the NO book is the mirror of the YES book.
    bids = [{"price": _px(p), "size": s} for p, s in sorted(book.bids.items())]
    asks = [{"price": _px(p), "size": s} for p, s in sorted(book.asks.items(), reverse=True)]
    if no:
        bids, asks = (
            [{"price": _px(1000 - p), "size": s} for p, s in sorted(book.asks.items(), reverse=True)],
            [{"price": _px(1000 - p), "size": s} for p, s in sorted(book.bids.items())],
        )
    return _ENC.encode(
        {
            "market": m.market,
            "asset_id": token,
            "timestamp": str(ts_ms),
            "hash": _hex(rng, 40),
            "bids": bids,
            "asks": asks,
            "tick_size": "0.001",
            "min_order_size": "5",
            "event_type": "book",
        }
    )


def workload(
    markets_n: int, messages: int, seed: int, changes_per_msg: int
) -> tuple[list[MarketInfo], list[bytes], list[bytes]]:
    """Markets, their opening ``book`` frames (YES and NO) and the ``price_change`` stream; seeded."""
    rng = random.Random(seed)
    markets = [
        MarketInfo(market=f"0x{_hex(rng, 64)}", yes_token=_token(rng), no_token=_token(rng), tick_px=10)
        for _ in range(markets_n)
    ]
    books = [_Book(rng) for _ in markets]
    now_ms = 1_790_000_000_000
    opening = []
    for m, book in zip(markets, books, strict=True):
        opening.append(_book_frame(m, book, m.yes_token, False, now_ms, rng))
        opening.append(_book_frame(m, book, m.no_token, True, now_ms, rng))
    stream = []
    for k in range(messages):
        i = rng.randrange(markets_n)
        changes = books[i].step() if changes_per_msg == 1 else books[i].move_touch()
        stream.append(_price_change(markets[i], changes, now_ms + 1 + k // 5, rng))
    return markets, opening, stream


def serve(markets_n: int, messages: int, seed: int, changes_per_msg: int, rate_per_s: int) -> None:
    """The venue stand-in (run in its own process): prints its port and serves until killed."""
    from websockets.sync.server import ServerConnection
    from websockets.sync.server import serve as ws_serve

    _, opening, stream = workload(markets_n, messages, seed, changes_per_msg)
    texts = [f.decode() for f in opening], [f.decode() for f in stream]

    def handler(ws: ServerConnection) -> None:
        ws.recv()  # the subscription
        threading.Thread(target=_answer_pings, args=(ws,), daemon=True).start()
        for text in texts[0]:
            ws.send(text)
        time.sleep(1.0)  # the client settles its books
        interval = 1.0 / rate_per_s
        start = time.perf_counter()
        for k, text in enumerate(texts[1]):
            wait = start + k * interval - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            ws.send(text)
        time.sleep(60)  # the client closes the connection when it has everything

    with ws_serve(handler, "127.0.0.1", 0, compression=None, ping_interval=None) as server:
        print(server.socket.getsockname()[1], flush=True)
        server.serve_forever()  # until the bench kills this process


def _answer_pings(ws: Any) -> None:
    with contextlib.suppress(Exception):
        for msg in ws:
            if msg == "PING":
                ws.send("PONG")


class TimedFeed(MarketWsClient):
    """The production client, noting when it starts decoding each message."""

    router: TimedRouter

    timing = False

    def _on_message(self, frame: str | bytes) -> None:
        # The stream's messages only: the opening books (a burst of full snapshots) are not ticks.
        self.router.current_t0 = time.perf_counter_ns() if self.timing else 0
        super()._on_message(frame)
        self.router.current_t0 = 0


def run(
    markets_n: int = 50,
    rate_per_s: int = 5_000,
    seconds: float = 8.0,
    seed: int = 5,
    changes_per_msg: int = 1,
    actors: str = "loop",
    signing: bool = False,
) -> dict[str, Any]:
    """Run the benchmark and return median/p99 in microseconds.

    ``actors``: "loop" (as in live trading) or "threads" (a thread per market actor, for comparison);
    ``signing``: a gateway thread signs every order handed over, as in live trading.
    """
    n = int(rate_per_s * seconds)
    server = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            str(markets_n),
            str(n),
            str(seed),
            str(changes_per_msg),
            str(rate_per_s),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        return _client(port, markets_n, n, seed, changes_per_msg, actors, signing)
    finally:
        server.kill()
        server.wait()


def _client(
    port: int, markets_n: int, n: int, seed: int, changes_per_msg: int, actors: str, signing: bool
) -> dict[str, Any]:
    cfg = load_config("configs/market_maker.yaml")
    # The shipped config (250 ms requote throttle), but no price tolerance, so that a requote the
    # message triggers always hands orders over; the feed is the only clock of book freshness here.
    params = msgspec.structs.replace(quote_params(cfg), max_book_age_ns=0, requote_px_tolerance_ticks=0)
    markets, _, _ = workload(markets_n, 0, seed, changes_per_msg)
    t0_of: dict[int, int] = {}
    latencies: list[int] = []
    router = TimedRouter(t0_of)
    # As ``app.bootstrap.TradingEngine`` builds them: the sessions (and the dry-run ports) read the
    # actors' loop's ``InputClock``, which the feed enters around each frame (one clock reading per
    # input); the loop's callbacks from other threads are inputs of it too.
    clock = InputClock(LiveClock())
    feed = TimedFeed(
        AssetMap.from_markets(markets),
        lambda ev: None,
        config=MarketWsConfig(url=f"ws://127.0.0.1:{port}", snapshot_timeout_s=None, proxy=None),
        on_batch=FrameDispatcher(router),
        input_scope=clock,
    )
    feed.router = router
    tmp = tempfile.TemporaryDirectory(prefix="polymm-ttq-")
    sink = JsonlFileSink(Path(tmp.name) / "events.jsonl")
    signer = None
    if signing:
        tokens = {m.market: m.yes_token for m in markets} | {"NO " + m.market: m.no_token for m in markets}
        signer = SigningGateway.start(tokens)
    refs = []
    _Timed.t0_of = t0_of
    quote_latency = LatencyHistogram(clock.base)  # (the engine's: on the running clock)
    loop = ActorLoop("polymm-market", clock=clock)
    loop.start()
    # A thread per market is no engine's: its sessions read the running clock, as before.
    sessions_clock: Clock = clock if actors == "loop" else clock.base
    for m in markets:
        port = TimedPort(m.market, router, latencies, sessions_clock, signer)
        session = MarketSession(m, params, port, sessions_clock, sink)
        session.quote_latency = quote_latency  # the engine's histogram, kept by the actor per frame
        if actors == "loop":
            ref = TimedLoopActor.start(session, actor_loop=loop)
        else:
            ref = TimedThreadActor.start(session)
        router.set(m.market, ref)
        refs.append(ref)
    feed_done = loop.run_coroutine(feed.run())
    tune_gc_for_latency()  # as TradingEngine.start does
    expected = 2 * markets_n + n
    deadline = time.monotonic() + 60 + n / 1_000
    first = last = 0.0
    while time.monotonic() < deadline:
        got = feed.status().messages
        if got >= 2 * markets_n and not feed.timing:
            feed.timing = True  # the server waits a second after the books before streaming
        if got > 2 * markets_n and not first:
            first = time.perf_counter()
        if got >= expected:
            last = time.perf_counter()
            break
        time.sleep(0.01)
    for ref in refs:
        ref.ask(GetStatus(), timeout=5)
        ref.stop()
    signed = signer.ask("signed", timeout=60) if signer is not None else 0
    if signer is not None:
        signer.stop()
    status = feed.status()
    feed.stop()
    feed_done.result(timeout=10)
    loop.stop()
    sink.close()
    tmp.cleanup()
    assert status.messages == expected and status.skipped == 0 and status.dropped_deltas == 0, status
    latencies.sort()
    return {
        "markets": markets_n,
        "messages": n,
        "changes_per_msg": changes_per_msg,
        "actors": "on the feed's event loop" if actors == "loop" else "a thread per market",
        "orders_signed_meanwhile": signed,
        "transport": "WebSocket on 127.0.0.1, venue stand-in in another process",
        "achieved_msgs_per_s": round(n / (last - first)) if last > first else None,
        "quotes_measured": len(latencies),
        "median_us": round(latencies[len(latencies) // 2] / 1000, 1) if latencies else None,
        "p99_us": round(latencies[int(len(latencies) * 0.99)] / 1000, 1) if latencies else None,
        "mean_us": round(statistics.fmean(latencies) / 1000, 1) if latencies else None,
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:  # the venue stand-in's own process (started by ``run``)
        markets_n, messages, seed, changes, rate = (int(a) for a in sys.argv[2:7])
        serve(markets_n, messages, seed, changes, rate)
    else:
        import argparse

        parser = argparse.ArgumentParser(
            description=__doc__.split("\n\n")[0] + " Prints one line of figures (latencies in us).",
        )
        parser.add_argument(
            "changes",
            nargs="?",
            type=int,
            default=1,
            help="level changes per message (1, or 4 for the stress shape) [1]",
        )
        parser.add_argument(
            "actors",
            nargs="?",
            choices=("loop", "threads"),
            default="loop",
            help="market actors on the feed's event loop (as live trading runs them) or a thread each [loop]",
        )
        parser.add_argument(
            "signing", nargs="?", choices=("signing",), help="also sign every order on a gateway thread"
        )
        a = parser.parse_args()
        print(run(changes_per_msg=a.changes, actors=a.actors, signing=a.signing == "signing"))
