"""One recorded stream, two paths, the same decisions byte for byte (issue #9, point 4).

The live path: a WebSocket server on 127.0.0.1 replays the stream, our ``MarketWsClient`` decodes it,
the ``FrameDispatcher`` puts it on the YES book and the market's actor decides in dry-run, all wired by
the composition root (``TradingEngine``). The simulated path: ``polymm sim`` on the same file (the
``ws_replay`` source, zero latency). Both write ``events.jsonl``; every decision (what was decided and
why), order and cancel must be the same bytes.

The stream is the real recorded burst (51 messages: two books and 49 ``price_change`` messages, each
level change published on both tokens) plus a synthetic tail with three trades, each printed on both
tokens as the venue does, and the book changes they cause: several decisions, and every trade counted
once on both paths.

How the live run is made comparable, by the composition root and never by patching:

* the sessions' clock follows the replayed venue timestamps (``ReplayClock``, given to the engine):
  live trading reads the receive clock, which no two runs share;
* the engine runs without its wall-clock ticker (``tick_s=None``); the driver tells the ``Timer``
  messages the simulator's timer would (every ``timer_ms`` from the first event, while events remain)
  and, when a throttled requote is due before the next input, wakes the actor at that time (what the
  ticker does live, to within 100 ms);
* the server sends the next frame only once the engine has handled the previous one and everything
  it caused (the dry-run port's acknowledgements), as the simulator handles an instant whole at zero
  latency; messages of one venue instant go in one frame, since the simulator decides once per
  instant and the live actor once per frame;
* the risk rules are the same functions on both paths (``actors.risk.RiskMonitor``) but not at the
  same instants: the simulator assesses at its interval barriers, the live risk actor when a sample
  reaches its thread. The burst's moves would widen the quotes (``risk.fast_move_cents``) at
  different instants, so the config turns the fast-move rule off; every rule left stays ACTIVE here.
"""

from __future__ import annotations

import asyncio
import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from actors.market import GetStatus
from actors.session import NEVER
from app.bootstrap import TradingEngine
from app.cli import main
from app.configfile import load_config
from core.markets import MarketInfo
from core.messages import Timer
from core.units import NS_PER_MS, QTY_ONE
from research.runlog import event_lines, read_run
from tests.market_channel_server import MarketChannelServer

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

FIX = Path(__file__).parents[1] / "fixtures" / "polymarket"
RECORDED: list[dict[str, Any]] = msgspec.json.decode(
    (FIX / "stream_book_price_change_burst_2026-09.json").read_bytes()
)
MARKET = RECORDED[0]["market"]
YES_TOKEN = RECORDED[0]["asset_id"]  # the token of the recorded books
NO_TOKEN = "54179564009642723353355316176091991063553046330768303687769988635499280029688"
INFO = MarketInfo(market=MARKET, yes_token=YES_TOKEN, no_token=NO_TOKEN, tick_px=10, min_qty=5 * QTY_ONE)
TIMER_MS = 1000
COMPARED = (b'{"kind":"decision"', b'{"kind":"place"', b'{"kind":"cancel",')


def _complement(px: str) -> str:
    return str(Decimal(1) - Decimal(px))


def _change(ts: int, side: str, px: str, size: str, *, no_first: bool = False) -> dict[str, Any]:
    # A level change of the YES book and its mirror on the NO token, in one price_change message.
    yes = {"asset_id": YES_TOKEN, "price": px, "size": size, "side": side, "hash": "0" * 40}
    no = {
        "asset_id": NO_TOKEN,
        "price": _complement(px),
        "size": size,
        "side": "SELL" if side == "BUY" else "BUY",
        "hash": "1" * 40,
    }
    changes = [no, yes] if no_first else [yes, no]
    return {"market": MARKET, "event_type": "price_change", "timestamp": str(ts), "price_changes": changes}


def _trade(
    ts: int, side: str, px: str, size: str, tx: str, *, no_first: bool = False
) -> list[dict[str, Any]]:
    # One match printed on both tokens with one transaction hash (a YES buyer is a NO seller).
    yes = {
        "market": MARKET,
        "event_type": "last_trade_price",
        "asset_id": YES_TOKEN,
        "price": px,
        "size": size,
        "side": side,
        "fee_rate_bps": "0",
        "timestamp": str(ts),
        "transaction_hash": tx,
    }
    no = dict(yes, asset_id=NO_TOKEN, price=_complement(px), side="SELL" if side == "BUY" else "BUY")
    return [no, yes] if no_first else [yes, no]


def stream() -> list[dict[str, Any]]:
    """The recorded burst, then trades on the book it leaves (best bid 0.29, best ask 0.301 x 45.83)."""
    t = int(RECORDED[-1]["timestamp"])
    tail = [
        *_trade(t + 1500, "BUY", "0.301", "45.83", "0x" + "a1" * 32),  # lifts the 0.301 ask whole
        _change(t + 1500, "SELL", "0.301", "0"),
        *_trade(t + 2700, "BUY", "0.387", "60", "0x" + "a2" * 32, no_first=True),
        _change(t + 2700, "SELL", "0.387", "0", no_first=True),
        _change(t + 4200, "BUY", "0.33", "250"),
        *_trade(t + 6100, "SELL", "0.33", "120.5", "0x" + "a3" * 32),
        _change(t + 6100, "BUY", "0.33", "129.5"),
        _change(t + 9000, "SELL", "0.35", "80", no_first=True),
    ]
    return RECORDED + tail


def frames(messages: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """(venue time in ns, frame text): the messages of one instant in one frame, in file order."""
    out: list[tuple[int, list[dict[str, Any]]]] = []
    for m in messages:
        ts = int(m["timestamp"]) * NS_PER_MS
        if out and out[-1][0] == ts:
            out[-1][1].append(m)
        else:
            assert not out or ts > out[-1][0], "the recording is in time order"
            out.append((ts, [m]))
    return [(ts, msgspec.json.encode(ms[0] if len(ms) == 1 else ms).decode()) for ts, ms in out]


def config(tmp_path: Path) -> Path:
    # The shipped market maker, quoting wide enough that no recorded or synthetic trade reaches our
    # orders (a dry run fills nothing; the simulated venue must not either) and not pulled by the
    # burst's volatility, so the tail is quoted and its trades move the flow sizes.
    text = Path("configs/market_maker.yaml").read_text()
    for old, new in (
        ("half_spread_px: 100 ", "half_spread_px: 1200 "),
        ("pull_threshold_px: 400 ", "pull_threshold_px: 3000 "),
        ("resume_threshold_px: 250 ", "resume_threshold_px: 2000 "),
        ("local_state/", f"{tmp_path}/local_state/"),
    ):
        assert old in text
        text = text.replace(old, new)
    text += "\nrisk:\n  fast_move_cents: null\n  pause_move_cents: null\n"
    path = tmp_path / "mm.yaml"
    path.write_text(text)
    return path


def sim_log(tmp_path: Path, cfg: Path, stream_path: Path) -> bytes:
    scenario = tmp_path / "parity.yaml"
    scenario.write_text(
        "name: parity\n"
        "source:\n"
        "  type: ws_replay\n"
        f"  path: {stream_path}\n"
        f"  yes_tokens: ['{YES_TOKEN}']\n"
        "  tick_px: 10\n"
        "  min_qty: 5_000_000\n"
        "latency: {feed_ms: 0, order_ms: 0, response_ms: 0}\n"
        f"timer_ms: {TIMER_MS}\n"
    )
    out = tmp_path / "sim"
    code = main(["sim", "--config", str(cfg), "--scenario", str(scenario), "--out", str(out), "--quiet"])
    assert code == 0
    return b"".join(event_lines(out))  # the columnar log as JSON lines (polymm events)


class ReplayClock:
    """The sessions' clock in a replay: the venue time the driver has reached."""

    def __init__(self, t: int) -> None:
        self.t = t

    def now_ns(self) -> int:
        return self.t


def wait_for(predicate: Any, what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def live_log(tmp_path: Path, cfg: Path, replay: list[tuple[int, str]]) -> bytes:
    clock = ReplayClock(replay[0][0])
    server = MarketChannelServer()
    state_dir = tmp_path / "live"
    engine = TradingEngine(
        load_config(str(cfg)),
        [INFO],
        "dry-run",
        ws_url=server.url,
        clob_url="http://127.0.0.1:9",  # never reached: the books come over the feed
        state_dir=state_dir,
        clock=clock,
        tick_s=None,
    )
    engine.start()
    try:
        ref = engine.router.get(MARKET)
        assert ref is not None and engine.feed is not None
        feed = engine.feed
        assert server.subscribed.wait(10)

        async def idle() -> None:
            # On the loop's thread, between callbacks: until no actor has a message left.
            while True:
                await asyncio.sleep(0)
                if ref.actor_inbox.empty():
                    return

        def settle() -> None:
            engine.actor_loop.run_coroutine(idle()).result(timeout=10)

        # The simulator's schedule: deliveries, then timers, then a due requote, at equal times.
        n = len(replay)
        i, next_timer = 0, replay[0][0] + TIMER_MS * NS_PER_MS
        while True:
            wakeup = ref.ask(GetStatus(), timeout=10).wakeup_ns
            t_frame = replay[i][0] if i < n else NEVER
            t_timer = next_timer if i < n else NEVER
            t = min(t_frame, t_timer, wakeup)
            if t >= NEVER:
                break
            clock.t = t
            if t == t_frame:
                server.frames.put(replay[i][1])
                i += 1
                wait_for(lambda i=i: feed.status().messages == i, f"frame {i}")
            elif t == t_timer:
                engine.router.tell(MARKET, Timer(market=MARKET, ts_ns=t))
                next_timer = t + TIMER_MS * NS_PER_MS
            else:
                ref.ask(GetStatus(), timeout=10)  # wakes the actor: it acts on what is due now
            settle()
        assert feed.status().skipped == 0
    finally:
        try:
            engine.stop()
        finally:
            engine.close()
            server.close()
    return (state_dir / "events.jsonl").read_bytes()


def compared(log: bytes) -> list[bytes]:
    return [line for line in log.splitlines() if line.startswith(COMPARED)]


def test_live_feed_and_sim_make_the_same_decisions_byte_for_byte(tmp_path):
    messages = stream()
    stream_path = tmp_path / "stream.json"
    stream_path.write_bytes(msgspec.json.encode(messages))
    cfg = config(tmp_path)

    sim = sim_log(tmp_path, cfg, stream_path)
    live = live_log(tmp_path, cfg, frames(messages))

    sim_lines, live_lines = compared(sim), compared(live)
    decisions = [msgspec.json.decode(x) for x in sim_lines if x.startswith(COMPARED[0])]
    assert len(decisions) >= 10
    assert any(not d["asks"] for d in decisions)  # the buyers' flow shrank the asks away...
    assert decisions[-1]["asks"] and decisions[-1]["reasons"]["flow_permille"] < 0  # ...a seller came back
    sim_records = [msgspec.json.decode(x) for x in sim.splitlines()]
    # The sim's input (re-read from input.json, not logged): each trade once, printed on both tokens.
    assert sum(m.trades for m in read_run(tmp_path / "sim").markets.values()) == 3
    assert not [r for r in sim_records if r["kind"] in ("fill", "rejected")]  # nothing a dry run lacks
    for i, (a, b) in enumerate(zip(live_lines, sim_lines, strict=False)):
        assert a == b, f"record {i} differs:\nlive {a.decode()}\nsim  {b.decode()}"
    assert len(live_lines) == len(sim_lines)
    # Both logs state their units the same way.
    live_units, sim_units = (msgspec.json.decode(log.splitlines()[0]) for log in (live, sim))
    assert live_units["kind"] == sim_units["kind"] == "units"
    assert live_units["units"] == sim_units["units"] and live_units["mode"] == "dry-run"
