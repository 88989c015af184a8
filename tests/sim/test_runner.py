import gc
import hashlib
from decimal import Decimal

import msgspec
import pytest

from app.configfile import load_config
from core.book import L2Book
from core.messages import BookSnapshot, Cancel, Canceled, Merged, Place, TickSizeChanged
from core.quoting import quote_params
from core.risk import RiskLimits
from core.units import USDC10_PER_USDC6, Outcome, Side, format_px, format_qty, maker_rebate_usdc6
from sim.eventcols import ColumnReader
from sim.runner import YOUNG_GC_OBJECTS, Runner, RunSettings, _inline_window
from sim.structs import Latency
from sim.summary import lane_summary, run_summary
from sim.tape import MarketTape
from tests.sim.tapes import SHARE, random_walk_tape
from venue.exchange import QueueModel, SimExchange

T = 10**18
PARAMS = quote_params(load_config("configs/market_maker.yaml"))


def run(engine="inline", seed=3, n=3_000, markets=3, settings=None, params=PARAMS):
    tapes = [random_walk_tape(i, n, seed) for i in range(markets)]
    runner = Runner(tapes, params, settings or RunSettings(global_ev_cap_usdc6=500_000_000), seed)
    runner.run(engine)
    return runner, log_bytes(runner)


def log_bytes(runner):
    """The run's log as the JSON lines ``polymm events`` prints (units header first)."""
    return b"".join(ColumnReader.of(runner.log).all_lines())


def lines(data):
    return [msgspec.json.decode(line) for line in data.splitlines()]


def test_same_seed_same_bytes_and_both_engines_agree():
    ra, a = run("inline")
    rb, b = run("inline")
    rc, c = run("actors")

    assert hashlib.sha256(a).hexdigest() == hashlib.sha256(b).hexdigest() == hashlib.sha256(c).hexdigest()
    assert len(a) > 100_000
    # The digest: a hash of the columns (what the run decided and did), the same across runs and engines.
    assert ra.log.digest() == rb.log.digest() == rc.log.digest()


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

    ra, a = run("inline", settings=settings)
    rb, b = run("actors", settings=settings)

    assert a == b
    assert ra.log.digest() == rb.log.digest()


def test_a_run_collects_young_garbage_less_often_and_puts_the_threshold_back():
    before = gc.get_threshold()
    during = []
    runner = Runner([random_walk_tape(0, 200, 3)], PARAMS, RunSettings(), 3)
    runner.run("inline", progress=lambda done, total: during.append(gc.get_threshold()))

    assert during and set(during) == {(max(before[0], YOUNG_GC_OBJECTS), *before[1:])}
    assert gc.get_threshold() == before


def test_different_seed_different_log():
    ra, a = run(seed=3)
    rb, b = run(seed=4)

    assert a != b
    assert ra.log.digest() != rb.log.digest()


def test_log_has_every_kind_and_maker_only_never_takes():
    _, data = run()
    events = lines(data)
    kinds = {e["kind"] for e in events}

    assert {"decision", "place", "cancel", "canceled", "fill", "settlement"} <= kinds
    # The input is not copied into the log (research.runlog re-reads it from input.json).
    assert kinds.isdisjoint({"book", "delta", "trade", "tick_size", "resolved"})
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


@pytest.mark.pure_python  # replaces a method of a class the compiled build compiles (bench/fast.py)
def test_worst_case_exposure_stays_under_the_caps_after_every_decision():
    tapes = [random_walk_tape(i, 4_000, 5) for i in range(3)]
    runner = Runner(tapes, PARAMS, RunSettings(global_ev_cap_usdc6=120_000_000), 5)
    seen = []
    for lane in runner.lanes:
        s = lane.session
        inner = s._apply

        def checked(d, *args, s=s, inner=inner):
            before = s.exposure_usdc6()
            cmds = inner(d, *args)
            cap = min(PARAMS.per_market_cap_usdc6, max(0, s.global_room_usdc6 or 0))
            after = s.exposure_usdc6()
            seen.append(after)
            assert after <= max(cap, before), (after, cap, before)
            return cmds

        s._apply = checked

    runner.run("inline")

    assert len(seen) > 100 and max(seen) > 0


@pytest.mark.parametrize("engine", ["inline", "actors"])
def test_summary_has_pnl_parts_that_add_up(engine):
    runner, _ = run(engine)
    s = run_summary(runner.lanes)

    pnl = s["pnl_usdc"]
    parts = pnl["spread_capture"] + pnl["inventory_mtm"] + pnl["fees"] + pnl["rebates"] + pnl["resolution"]
    assert abs(parts - pnl["total"]) < 1e-5
    assert pnl["rebates"] == 0  # the test markets pay no rebate
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
    received = list(lane.cmds)  # the venue takes them in this order

    assert [c for _, c in received] == sent  # the n-th sent is the n-th to reach the venue
    assert [a for a, _ in received] == sorted(a for a, _ in received)  # and in time order
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

    assert lane.markouts.fill_idx == [0, 1]
    assert lane.markouts.start_ts == [T + 1, T + 1]


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


def event_peaks(tapes, settings, group=(0, 1)):
    """Run inline; per budget window, the sum over ``group`` of each market's peak exposure."""
    runner = Runner(tapes, PARAMS, settings, 5)
    peak = [0] * len(tapes)
    for lane in runner.lanes:
        s = lane.session
        inner = s._apply

        def tracked(d, *args, s=s, inner=inner, i=lane.idx):
            cmds = inner(d, *args)
            peak[i] = max(peak[i], s.exposure_usdc6())
            return cmds

        s._apply = tracked
    sums = []

    def window(work, end, exposures):
        peak[:] = list(exposures)  # a market's exposure at the window's start counts too
        _inline_window(work, end, exposures)
        sums.append(sum(max(peak[i], exposures[i]) for i in group))

    runner._loop(window, None)
    return sums


@pytest.mark.pure_python  # replaces a method of a class the compiled build compiles (bench/fast.py)
def test_two_markets_of_one_neg_risk_event_are_held_to_the_event_cap_together():
    def tapes(event_id):
        out = [random_walk_tape(i, 4_000, 5) for i in range(3)]
        for t in out[:2]:
            t.info = msgspec.structs.replace(t.info, neg_risk=bool(event_id), neg_risk_market_id=event_id)
        return out

    cap = 60_000_000  # 60 USDC for the event; each market alone may go to 100 (per-market cap)
    settings = RunSettings(global_ev_cap_usdc6=1_000_000_000, event_cap_usdc6=cap)

    grouped = event_peaks(tapes("ev-1"), settings)
    apart = event_peaks(tapes(""), settings)

    assert len(grouped) > 50
    assert max(grouped) <= cap  # at every moment, the two markets together
    assert max(grouped) > 0.9 * cap  # and the cap binds
    assert max(apart) > 1.2 * cap  # without the event each market has its own 100


@pytest.mark.pure_python  # replaces a method of a class the compiled build compiles (bench/fast.py)
def test_event_cap_without_a_global_cap_still_binds():
    tapes = [random_walk_tape(i, 2_000, 5) for i in range(2)]
    for t in tapes:
        t.info = msgspec.structs.replace(t.info, neg_risk=True, neg_risk_market_id="ev")
    cap = 50_000_000

    sums = event_peaks(tapes, RunSettings(event_cap_usdc6=cap))

    assert 0.9 * cap < max(sums) <= cap


def test_event_log_opens_with_units_and_every_integer_field_has_one():
    runner, data = run(n=2_000)
    records = lines(data)
    head = records[0]
    units = head["units"]
    rules = [(name, pat) for name, u in units.items() for pat in u["applies_to"]]

    def unit_of(key):
        for name, pat in rules:
            if key == pat or (pat.startswith("*") and key.endswith(pat[1:])):
                return name
        return None

    # Integers that are counts or flags, not amounts (they need no unit).
    plain = {"improved", "maker_clamped"}
    missing = set()

    def walk(obj, key=""):
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, k)
        elif isinstance(obj, list):
            if key in head["pairs"]:
                for pair in obj:
                    assert [unit_of(f) for f in head["pairs"][key]] == ["px", "qty"] and len(pair) == 2
            else:
                for v in obj:
                    walk(v, key)
        elif isinstance(obj, int) and not isinstance(obj, bool):
            known = unit_of(key) is not None or key in head["codes"] or key in plain
            if not known:
                missing.add(key)

    assert [r["kind"] for r in records].count("units") == 1
    assert (head["kind"], head["market"], head["mode"]) == ("units", "", "sim")
    # The units record is stamped with the run's first event (an input event: not in the log).
    assert head["ts_ns"] == min(lane.tape.ts[0] for lane in runner.lanes)
    assert head["ts_ns"] <= min(r["ts_ns"] for r in records[1:])
    for r in records[1:]:
        walk(r)
    assert missing == set()
    assert (units["px"]["scale"], units["qty"]["scale"], units["usdc6"]["scale"]) == (
        "0.0001",
        "0.000001",
        "0.000001",
    )
    # What a reader computes from the header is the real amount: a fill's price and size.
    fill = next(r for r in records if r["kind"] == "fill")
    px = Decimal(fill["px"]) * Decimal(units["px"]["scale"])
    assert px == Decimal(format_px(fill["px"]))
    assert Decimal(fill["qty"]) * Decimal(units["qty"]["scale"]) == Decimal(format_qty(fill["qty"]))


def test_summary_states_its_units_and_the_data_it_ran_on():
    runner, _ = run(n=1_000)
    for lane in runner.lanes:
        lane.tape.meta = {"data": f"test tape {lane.idx}"}
        lane.tape.source = {"type": "test"}

    s = run_summary(runner.lanes)

    assert s["units"]["usdc"]["applies_to"][:2] == ["*_usdc", "pnl_usdc.*"]
    assert s["units"]["px"]["scale"] == "0.0001"
    assert "*_px" in s["units"]["px"]["applies_to"]
    assert [m["data"] for m in s["per_market"]] == [{"data": f"test tape {i}"} for i in range(3)]
    # Three tapes with equal but separate source notes: listed each.
    assert s["source"] == [{"type": "test"}] * 3
    shared = {"type": "shared"}
    for lane in runner.lanes:
        lane.tape.source = shared
    assert run_summary(runner.lanes)["source"] == shared


def test_maker_rebates_are_credited_per_fill_and_shown_apart_from_fees():
    tapes = [random_walk_tape(i, 3_000, 3) for i in range(2)]
    for t in tapes:
        t.info = msgspec.structs.replace(t.info, rebate_ppm=250_000)
    runner = Runner(tapes, PARAMS, RunSettings(global_ev_cap_usdc6=500_000_000), 3)
    runner.run("inline")

    s = run_summary(runner.lanes)

    for lane, per in zip(runner.lanes, s["per_market"], strict=True):
        pnl = per["pnl_usdc"]
        fills = lane.exchange.fills
        expected = sum(
            maker_rebate_usdc6(f.yes_px, f.qty, 40_000, 250_000) for f in fills if f.liquidity == "maker"
        )
        assert expected > 0
        assert sum(f.rebate_usdc6 for f in fills) == expected
        assert pnl["rebates"] == round(expected / 1e6, 6)
        assert pnl["fees"] == round(-sum(f.fee_usdc6 for f in fills) / 1e6, 6)
        parts = sum(pnl[k] for k in ("spread_capture", "inventory_mtm", "fees", "rebates", "resolution"))
        assert abs(parts - pnl["total"]) < 1e-5
        # The session's cash is what the account holds; the rebates come on top (paid by the venue later).
        assert lane.session.resolved
        assert abs(pnl["total"] - pnl["rebates"] - lane.session.inv.cash_usdc6 / 1e6) < 1e-5
    assert s["pnl_usdc"]["rebates"] == round(sum(m["pnl_usdc"]["rebates"] for m in s["per_market"]), 6)


@pytest.mark.pure_python  # replaces a method of a class the compiled build compiles (bench/fast.py)
def test_event_budget_defaults_to_the_per_market_cap():
    # inventory.event_cap's default: an event's markets share one market's budget (100 USDC here).
    tapes = [random_walk_tape(i, 4_000, 5) for i in range(2)]
    for t in tapes:
        t.info = msgspec.structs.replace(t.info, neg_risk=True, neg_risk_market_id="ev")
    cap = PARAMS.per_market_cap_usdc6

    sums = event_peaks(tapes, RunSettings(global_ev_cap_usdc6=1_000_000_000))

    assert 0.9 * cap < max(sums) <= cap


#: Risk limits that act on these tapes: fast moves of a cent widen, of three cents pause.
TIGHT_RISK = RiskLimits(
    daily_loss_stop_usdc6=10**12,
    market_daily_loss_stop_usdc6=10**12,
    fast_move_px=100,
    fast_move_window_ns=2 * 10**9,
    widen_px=100,
    pause_move_px=300,
)


def _with_epochs(tape):
    """``tape`` again with a mid-run snapshot and a tick change (then its snapshot), each sharing
    its instant with the tape's own events, so specials land inside same-instant groups."""
    events = list(tape.events())
    out = MarketTape(tape.info)
    cut1, cut2 = len(events) // 3, 2 * len(events) // 3
    for k, ev in enumerate(events):
        if k in (cut1, cut2):
            ts = ev.ts_ns
            if k == cut2:
                out.add(TickSizeChanged(market=ev.market, outcome=Outcome.YES, ts_ns=ts, tick_px=100))
            bids = tuple((px, 100 * SHARE) for px in range(4_500, 4_900, 100))[::-1]
            asks = tuple((px, 100 * SHARE) for px in range(5_100, 5_500, 100))
            out.add(BookSnapshot(market=ev.market, outcome=Outcome.YES, ts_ns=ts, bids=bids, asks=asks))
        out.add(ev)
    return out


@pytest.mark.pure_python  # replaces a method of a class the compiled build compiles (bench/fast.py)
@pytest.mark.parametrize(
    "latency",
    [
        Latency(feed_ms=0, order_ms=0, response_ms=0),
        Latency(feed_ms=0, order_ms=5, response_ms=0),
        Latency(feed_ms=0, order_ms=0, response_ms=7, order_jitter_ms=3, response_jitter_ms=4),
    ],
)
@pytest.mark.parametrize("queue", ["risk_averse", "probabilistic"])
@pytest.mark.parametrize("risk", [None, "tight"], ids=["no_risk", "risk"])
def test_a_shared_book_without_feed_latency_decides_and_logs_as_a_book_per_session(
    latency, queue, risk, monkeypatch
):
    # Without feed latency the venue and the session read one book: every run must write the same
    # bytes as with a book per session, through same-instant groups, specials inside them (the
    # session then keeps its own copy until it catches up), fills on both sides and liquidity we
    # used (the venue's own book forks from the shared one then).
    copies = forks = 0
    real_copy, real_use = L2Book.copy, SimExchange._use

    def counting_copy(self):
        nonlocal copies
        copies += 1
        return real_copy(self)

    def counting_use(self, *args):
        nonlocal forks
        forks += self.book is self.shown
        real_use(self, *args)

    monkeypatch.setattr(L2Book, "copy", counting_copy)
    monkeypatch.setattr(SimExchange, "_use", counting_use)
    settings = RunSettings(latency=latency, queue=QueueModel(model=queue), global_ev_cap_usdc6=300_000_000)
    out = {}
    for share in (True, False):
        tapes = [_with_epochs(random_walk_tape(i, 2_000, 5)) for i in range(2)]
        limits = TIGHT_RISK if risk else None
        runner = Runner(tapes, PARAMS, settings, 5, risk=limits, share_books=share)
        runner.run("inline")
        assert all(lane.shared == share for lane in runner.lanes)
        out[share] = log_bytes(runner)
        if share:
            shared_fills = sum(len(lane.exchange.fills) for lane in runner.lanes)
            risk_changes = 0 if runner.risk is None else len(runner.risk.history)
    assert out[True] == out[False]
    if risk:
        # The risk rules acted (a fill's sample reads the book: the shared one must look the same).
        assert risk_changes > 5
    assert shared_fills > (10 if risk else 20)
    assert copies >= 2 * 3  # each market: apart at its first snapshot, its two specials inside groups
    assert forks > 0  # and the venue traded against a book apart from the data's
    kinds = {rec["kind"] for rec in lines(out[True])}
    assert {"settlement", "fill", "canceled", "place"} <= kinds


def test_the_actors_engine_shares_the_book_alike():
    settings = RunSettings(
        latency=Latency(feed_ms=0, order_ms=0, response_ms=0), global_ev_cap_usdc6=300_000_000
    )
    tapes = [random_walk_tape(i, 1_500, 9) for i in range(2)]
    _, a = run("inline", seed=9, n=1_500, markets=2, settings=settings)
    _, b = run("actors", seed=9, n=1_500, markets=2, settings=settings)
    assert a == b
    assert Runner(tapes, PARAMS, settings, 9).lanes[0].shared


@pytest.mark.parametrize("jitter_ms", [0, 200])
def test_a_merge_confirmation_due_later_never_holds_back_the_reports_queued_after_it(jitter_ms):
    # The confirmation comes merge_ms after the merge; reports queued meanwhile arrive before it, in
    # time order (the session takes the report queue from its head).
    settings = RunSettings(latency=Latency(response_ms=10, response_jitter_ms=jitter_ms, merge_ms=4_000))
    lane = Runner([random_walk_tape(0, 10, 1)], PARAMS, settings, 1).lanes[0]
    merged = Merged(market="m0", merge_id="m0-m1", ts_ns=T, qty=SHARE)
    canceled = [Canceled(market="m0", client_id=f"m0-{k}", ts_ns=T, reason="") for k in range(20)]

    lane._merge_done([merged], T)
    for k, ev in enumerate(canceled):
        lane._reports([ev], T + (k + 1) * 10**6)

    arrivals = [a for a, _ in lane.reps]
    assert arrivals == sorted(arrivals)
    assert [ev for _, ev in lane.reps][:-1] == canceled  # each report before the confirmation
    assert lane.reps[-1] == (T + 4 * 10**9, msgspec.structs.replace(merged, ts_ns=T + 4 * 10**9))
