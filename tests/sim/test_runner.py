import hashlib
import heapq
import io

import msgspec
import pytest

from app.configfile import load_config
from core.messages import BookSnapshot, Cancel, Place
from core.quoting import quote_params
from core.units import USDC10_PER_USDC6, Outcome, Side
from sim.exchange import QueueModel
from sim.runner import Latency, Runner, RunSettings
from sim.summary import lane_summary, run_summary
from tests.sim.tapes import SHARE, random_walk_tape

T = 10**18
PARAMS = quote_params(load_config("configs/market_maker.yaml"))


def run(engine="inline", seed=3, n=3_000, markets=3, settings=None, params=PARAMS):
    tapes = [random_walk_tape(i, n, seed) for i in range(markets)]
    runner = Runner(tapes, params, settings or RunSettings(global_ev_cap_usdc6=500_000_000), seed)
    buf = io.BytesIO()
    runner.run(engine, buf.write)
    return runner, buf.getvalue()


def lines(data):
    return [msgspec.json.decode(line) for line in data.splitlines()]


def test_same_seed_same_bytes_and_both_engines_agree():
    _, a = run("inline")
    _, b = run("inline")
    _, c = run("actors")

    assert hashlib.sha256(a).hexdigest() == hashlib.sha256(b).hexdigest() == hashlib.sha256(c).hexdigest()
    assert len(a) > 100_000


def test_engines_agree_with_latency_jitter_and_probabilistic_queue():
    settings = RunSettings(
        latency=Latency(
            feed_ms=20,
            feed_jitter_ms=30,
            order_ms=40,
            order_jitter_ms=60,
            response_ms=30,
            response_jitter_ms=20,
        ),
        queue=QueueModel(model="probabilistic", power=3.0),
        global_ev_cap_usdc6=150_000_000,
    )

    _, a = run("inline", settings=settings)
    _, b = run("actors", settings=settings)

    assert a == b


def test_different_seed_different_log():
    _, a = run(seed=3)
    _, b = run(seed=4)

    assert a != b


def test_log_has_every_kind_and_maker_only_never_takes():
    _, data = run()
    events = lines(data)
    kinds = {e["kind"] for e in events}

    assert {"book", "delta", "trade", "decision", "place", "cancel", "canceled", "fill", "resolved"} <= kinds
    fills = [e for e in events if e["kind"] == "fill"]
    assert fills and all(f["liquidity"] == "maker" for f in fills)


def test_long_inventory_lowers_quotes_in_logged_decisions():
    _, data = run(n=6_000)
    decisions = [e for e in lines(data) if e["kind"] == "decision" and e["quote"]]
    long = [d for d in decisions if d["reasons"]["inventory_qty"] > 0]
    short = [d for d in decisions if d["reasons"]["inventory_qty"] < 0]

    assert long and short
    assert all(d["skewed_mid_px"] <= d["fair_px"] for d in long)
    assert all(d["skewed_mid_px"] >= d["fair_px"] for d in short)
    assert any(d["skewed_mid_px"] < d["fair_px"] for d in long)


def test_worst_case_exposure_stays_under_the_caps_after_every_decision():
    tapes = [random_walk_tape(i, 4_000, 5) for i in range(3)]
    runner = Runner(tapes, PARAMS, RunSettings(global_ev_cap_usdc6=120_000_000), 5)
    seen = []
    for lane in runner.lanes:
        s = lane.session
        inner = s._apply

        def checked(d, s=s, inner=inner):
            before = s.exposure_usdc6()
            cmds = inner(d)
            cap = min(PARAMS.per_market_cap_usdc6, max(0, s.global_room_usdc6 or 0))
            after = s.exposure_usdc6()
            seen.append(after)
            assert after <= max(cap, before), (after, cap, before)
            return cmds

        s._apply = checked

    runner.run("inline", lambda b: None)

    assert len(seen) > 100 and max(seen) > 0


@pytest.mark.parametrize("engine", ["inline", "actors"])
def test_summary_has_pnl_parts_that_add_up(engine):
    runner, _ = run(engine)
    s = run_summary(runner.lanes)

    pnl = s["pnl_usdc"]
    parts = pnl["spread_capture"] + pnl["inventory_mtm"] + pnl["fees"] + pnl["resolution"]
    assert abs(parts - pnl["total"]) < 1e-5
    assert s["fills"]["maker"] > 0 and s["fills"]["taker"] == 0
    assert 0 < s["quote_uptime"] <= 1
    assert s["avg_quoted_spread_px"] > 0
    assert set(s["markouts"]) == {"1s", "10s", "60s"}
    assert s["events_processed"] == sum(len(lane.tape) for lane in runner.lanes)


def test_settlement_pnl_matches_the_session_inventory():
    runner, _ = run()
    s = run_summary(runner.lanes)

    odd = 0
    for lane, per in zip(runner.lanes, s["per_market"], strict=True):
        # Resolved markets: the session's cash after settlement is the total PnL, to the micro-USDC,
        # also when fills of odd sizes (not on the 0.01-share grid) rounded the cash.
        assert lane.session.resolved
        assert abs(lane.session.inv.cash_usdc6 / 1e6 - per["pnl_usdc"]["total"]) < 1e-5
        assert per["pnl_usdc"]["total"] == round(lane.session.inv.cash_usdc6 / 1e6, 6)
        odd += sum(1 for f in lane.exchange.fills if (f.yes_px * f.qty) % USDC10_PER_USDC6)
    assert odd > 0


def test_jittered_latency_never_reorders_commands_or_reports():
    settings = RunSettings(
        latency=Latency(order_ms=10, order_jitter_ms=200, response_ms=10, response_jitter_ms=200)
    )
    lane = Runner([random_walk_tape(0, 10, 1)], PARAMS, settings, 1).lanes[0]

    sent = [Cancel(market="m0", client_id=f"m0-{k}") for k in range(50)]
    lane._drain([(1_000, c) for c in sent])
    received = []
    while lane.cmd_heap:
        arrival, _, cmd = heapq.heappop(lane.cmd_heap)
        received.append((arrival, cmd))

    assert [c for _, c in received] == sent  # the n-th sent is the n-th to reach the venue
    assert len({a for a, _ in received}) > 1  # and the jitter is real


def test_markouts_track_every_fill_of_a_batch():
    lane = Runner([random_walk_tape(0, 10, 1)], PARAMS, RunSettings(), 1).lanes[0]
    ex = lane.exchange
    ex.on_snapshot(
        BookSnapshot(
            market="m0", outcome=Outcome.YES, ts_ns=T, bids=((4_700, SHARE),), asks=((4_800, SHARE),)
        )
    )
    for i, px in enumerate((4_700, 4_600)):
        place = Place(
            market="m0", client_id=f"b{i}", outcome=Outcome.YES, side=Side.BUY, px=px, qty=5 * SHARE
        )
        ex.place(place, T)

    out = ex.on_trade(Side.SELL, 4_500, 20 * SHARE, T + 1)  # sweeps through both of our bids
    lane._reports(out, T + 1)

    assert [idx for _, idx in lane.markouts.pending[0]] == [0, 1]


def test_final_position_is_marked_at_the_last_two_sided_mid_not_zero():
    lane = Runner([random_walk_tape(0, 10, 1, resolve=None)], PARAMS, RunSettings(), 1).lanes[0]
    ex = lane.exchange
    ex.on_snapshot(
        BookSnapshot(
            market="m0", outcome=Outcome.YES, ts_ns=T, bids=((4_900, SHARE),), asks=((5_100, SHARE),)
        )
    )
    ex.place(
        Place(market="m0", client_id="b", outcome=Outcome.YES, side=Side.BUY, px=5_000, qty=100 * SHARE), T
    )
    ex.on_trade(Side.SELL, 4_900, 100 * SHARE, T + 1)  # we buy 100 YES at 0.50
    ex.on_level(Side.SELL, 5_100, 0, T + 2)  # the book ends one-sided

    s = lane_summary(lane)

    assert s["pnl_usdc"]["total"] == 0.0  # marked at the last mid, 0.50, not at 0
