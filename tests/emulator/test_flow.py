"""The other participants: synthetic makers and takers (seeded), and replayed recordings."""

from __future__ import annotations

import json
import random
from pathlib import Path

from py_clob_client_v2.clob_types import OrderArgsV2, OrderType

from core.units import QTY_ONE, Outcome, Side
from emulator import Emulator, ManualClock
from emulator.flow import FLOW_MAKER, SyntheticFlow
from emulator.scenario import FlowConfig, MarketConfig, ReplayConfig, Scenario
from tests.emulator.conftest import control, ids, make_client
from venue.matching import MatchingEngine


def _run_flow(seed: int) -> tuple[object, ...]:
    engine = MatchingEngine("m", tick_px=100, min_qty=5 * QTY_ONE)
    flow = SyntheticFlow(FlowConfig(taker_rate_per_s=5.0), "m", 5_000, random.Random(seed), seed, 0)
    for step in range(200):
        ts = step * 50_000_000
        flow.step(ts, engine, lambda owner, cmd, ts=ts: engine.submit(owner, cmd, ts))
    return (
        engine.depth(Outcome.YES, Side.BUY),
        engine.depth(Outcome.YES, Side.SELL),
        engine.balance(FLOW_MAKER),
        round(flow.fair, 6),
    )


def test_synthetic_flow_is_deterministic_for_a_seed():
    assert _run_flow(3) == _run_flow(3)
    assert _run_flow(3) != _run_flow(4)


def test_synthetic_makers_quote_around_fair_on_the_tick_grid():
    engine = MatchingEngine("m", tick_px=100, min_qty=5 * QTY_ONE)
    cfg = FlowConfig(
        maker_levels=3, maker_half_spread_px=150, maker_step_px=100, fair_vol_px_per_s=0, taker_rate_per_s=0
    )
    flow = SyntheticFlow(cfg, "m", 5_000, random.Random(1), 1, 0)

    flow.step(0, engine, lambda owner, cmd: engine.submit(owner, cmd, 0))

    assert [px for px, _ in engine.depth(Outcome.YES, Side.BUY)] == [4800, 4700, 4600]
    assert [px for px, _ in engine.depth(Outcome.YES, Side.SELL)] == [5200, 5300, 5400]


def test_replayed_trades_fill_a_better_resting_quote(tmp_path: Path):
    yes, no, cid = "111", "222", "0x" + "ab" * 32
    recording = [
        {
            "event_type": "book",
            "asset_id": yes,
            "market": cid,
            "bids": [{"price": "0.47", "size": "100"}, {"price": "0.48", "size": "100"}],
            "asks": [{"price": "0.53", "size": "100"}, {"price": "0.52", "size": "100"}],
            "timestamp": "1000",
        },
        # The NO book the venue sends with it: the YES book's mirror (a NO snapshot is a YES snapshot).
        {
            "event_type": "book",
            "asset_id": no,
            "market": cid,
            "bids": [{"price": "0.47", "size": "100"}, {"price": "0.48", "size": "100"}],
            "asks": [{"price": "0.53", "size": "100"}, {"price": "0.52", "size": "100"}],
            "timestamp": "1000",
        },
        {
            "event_type": "last_trade_price",
            "asset_id": yes,
            "market": cid,
            "price": "0.48",
            "size": "5",
            "side": "SELL",
            "timestamp": "2500",
        },
    ]
    path = tmp_path / "recording.json"
    path.write_text(json.dumps(recording))
    sc = Scenario(
        markets=(MarketConfig(slug="replayed", replay=ReplayConfig(path=str(path), yes_token=yes)),),
        step_ms=10,
    )

    with Emulator(sc, port=0, clock=ManualClock()) as emu:
        client = make_client(emu)
        me = client.get_address().lower()
        token = ids(emu, "replayed")["yes_token"]
        assert client.get_order_book(token)["bids"][-1] == {"price": "0.48", "size": "100"}
        client.create_and_post_order(
            OrderArgsV2(token_id=token, price=0.49, size=5, side="BUY"),
            order_type=OrderType.GTC,
            post_only=True,
        )

        # The recorded trade comes 1.5 s after the book, on the replay's (fake) clock.
        control(emu, "POST", "/emulator/clock", {"advance_ms": 1_499})
        before = emu.status()["users"][me]["fills"]
        control(emu, "POST", "/emulator/clock", {"advance_ms": 1})
        assert (before, emu.status()["users"][me]["fills"]) == (0, 1)
        assert client.get_order_book(token)["bids"][-1] == {"price": "0.48", "size": "100"}
