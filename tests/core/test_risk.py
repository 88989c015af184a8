from pathlib import Path

import msgspec
import pytest
from hypothesis import Phase, example, find, given, settings
from hypothesis import strategies as st

from app.configfile import ConfigFileError, load_config
from core.config import Config, InventoryConfig, RiskConfig
from core.inventory import Inventory, apply_fill, mark_to_market
from core.risk import (
    ACTIVE_GATE,
    ERROR_BUCKET_NS,
    MOVE_BUCKETS,
    NS_PER_DAY,
    BookCarry,
    BookObs,
    EventWindow,
    MarketCarry,
    MarketDay,
    MarketObs,
    MidWindow,
    RiskGate,
    RiskLimits,
    TradingState,
    assess_book,
    assess_market,
    describe,
    evaluate,
    events_last_minute,
    mid_move_px,
    record_events,
    record_mid,
    restore_day,
    resume,
    risk_limits,
    utc_day,
)
from core.units import NS_PER_S, QTY_ONE, Outcome, Side
from tests.strategies import (
    RISK_NOW,
    USD,
    book_carries,
    book_obs,
    market_carries,
    market_obs,
)
from tests.strategies import risk_limits as limits_st

SHARE = QTY_ONE
NOW = RISK_NOW
ACTIVE, REDUCE_ONLY, PAUSED, HALTED = (
    TradingState.ACTIVE,
    TradingState.REDUCE_ONLY,
    TradingState.PAUSED,
    TradingState.HALTED,
)
#: Every rule on, with round numbers.
LIMITS = RiskLimits(
    daily_loss_stop_usdc6=150 * USD,
    market_daily_loss_stop_usdc6=100 * USD,
    max_drawdown_usdc6=120 * USD,
    fast_move_px=300,
    fast_move_window_ns=10 * NS_PER_S,
    widen_px=100,
    pause_move_px=1_000,
    inventory_hard_limit_qty=500 * SHARE,
    max_errors_per_min=30,
    max_feed_age_ns=60 * NS_PER_S,
    max_heartbeat_age_ns=8 * NS_PER_S,
)
BOOK_SCOPE = msgspec.structs.replace(LIMITS, halt_book_on_market_loss=True)


def long_yes(shares, px=5_000):
    return apply_fill(Inventory(), Outcome.YES, Side.BUY, px, shares * SHARE, 0)


def obs(market="m1", inv=None, mark=5_000, **kw):
    return MarketObs(market=market, inv=inv if inv is not None else Inventory(), mark_px=mark, **kw)


def day_start(o):
    # A carry whose baseline is the observation's value at the mark it was bought at (flat PnL so far).
    return MarketCarry(
        day=MarketDay(
            day=utc_day(NOW),
            start_value_usdc6=mark_to_market(o.inv, o.mark_px),
            start_realized_usdc6=o.inv.realized_usdc6 - o.inv.fees_usdc6,
        )
    )


def marked_down(o, mark):
    return msgspec.structs.replace(o, mark_px=mark)


def run(observations, carries=None, book=None, book_carry=None, limits=LIMITS, ts=NOW):
    return evaluate(
        observations,
        book or BookObs(),
        carries or {o.market: day_start(o) for o in observations},
        book_carry or BookCarry(day=utc_day(ts)),
        limits,
        ts,
    )


def by_market(verdict):
    return {m.market: m for m in verdict.markets}


def window(*samples, window_s=10):
    w = MidWindow(window_ns=window_s * NS_PER_S)
    for ts, mid in samples:
        w = record_mid(w, mid, ts)
    return w


# --- examples: each rule, with its numbers ------------------------------------------------------------


def test_risk_nothing_fired_is_active_everywhere_with_the_shared_gate():
    o = obs(inv=long_yes(100))

    v = run([o])

    assert v.book.state is ACTIVE and v.book.reasons == () and v.book.halt is None
    m = v.markets[0]
    assert m.state is ACTIVE and m.reasons == () and m.gate is ACTIVE_GATE


def test_risk_market_loss_stop_halts_that_market_only_with_the_loss_and_stop():
    # 400 YES bought at 0.50 marked at 0.25: 100 USDC down today, the market's stop.
    crashed = obs("m1", long_yes(400))
    calm = obs("m2", long_yes(10))
    carries = {"m1": day_start(crashed), "m2": day_start(calm)}

    v = run([marked_down(crashed, 2_500), calm], carries)

    m = by_market(v)
    assert m["m1"].state is HALTED and m["m2"].state is ACTIVE and v.book.state is ACTIVE
    r = m["m1"].reasons[0]
    assert (r.rule, r.scope, r.market, r.observed, r.limit, r.unit) == (
        "market_daily_loss_stop",
        "market",
        "m1",
        100 * USD,
        100 * USD,
        "usdc6",
    )
    assert m["m1"].pnl.day_pnl_usdc6 == -100 * USD and m["m1"].pnl.day_unrealized_usdc6 == -100 * USD
    assert m["m1"].halt is not None and m["m1"].halt.ts_ns == NOW
    assert m["m1"].gate.state is HALTED and m["m1"].gate.rule == "market_daily_loss_stop"
    assert "halted by market_daily_loss_stop [m1]: 100 USDC >= 100 USDC" in m["m1"].gate.detail


def test_risk_market_loss_stop_with_book_scope_halts_every_market():
    crashed = obs("m1", long_yes(400))
    calm = obs("m2", long_yes(10))
    carries = {"m1": day_start(crashed), "m2": day_start(calm)}

    v = run([marked_down(crashed, 2_500), calm], carries, limits=BOOK_SCOPE)

    assert v.book.state is HALTED
    assert v.book.halt is not None and v.book.halt.reason.rule == "market_daily_loss_stop"
    assert v.book.halt.reason.market == "m1"
    assert all(m.state is HALTED for m in v.markets)
    m2 = by_market(v)["m2"]
    assert m2.gate.rule == "market_daily_loss_stop" and "[m1]" in m2.gate.detail
    assert by_market(v)["m1"].carry.halt is None  # the latch is the book's: one resume clears it


def test_risk_book_loss_stop_sums_the_markets_marked_pnl():
    # Two markets each 80 USDC down (under the 100 market stop): 160 >= the book's 150.
    a, b = obs("a", long_yes(320)), obs("b", long_yes(320))
    carries = {"a": day_start(a), "b": day_start(b)}

    v = run([marked_down(a, 2_500), marked_down(b, 2_500)], carries)

    assert v.book.day_pnl_usdc6 == -160 * USD
    assert v.book.state is HALTED
    r = v.book.reasons[0]
    assert (r.rule, r.observed, r.limit) == ("daily_loss_stop", 160 * USD, 150 * USD)
    assert all(m.state is HALTED and m.gate.rule == "daily_loss_stop" for m in v.markets)
    assert all(m.reasons[0].rule == "daily_loss_stop" for m in v.markets)  # the book's reason, first


def test_risk_drawdown_from_the_days_peak_halts_the_book_while_still_in_profit():
    o = obs(inv=long_yes(1_000))
    carries = {"m1": day_start(o)}
    up = run([marked_down(o, 6_000)], carries)  # +100 USDC: the peak
    assert up.book.state is ACTIVE and up.book.peak_pnl_usdc6 == 100 * USD

    v = run([marked_down(o, 4_800)], carries, book_carry=up.book.carry)  # -20: 120 off the peak

    assert v.book.state is HALTED
    r = v.book.reasons[0]
    assert (r.rule, r.observed, r.limit) == ("max_drawdown", 120 * USD, 120 * USD)
    assert "peak 100 USDC" in describe(r)


def test_risk_fast_move_widens_then_pauses_then_resumes_when_the_move_leaves_the_window():
    t0 = NOW - 5 * NS_PER_S
    moved = window((t0, 5_000), (t0 + NS_PER_S, 5_400))  # 4 cents in a second
    crashed = window((t0, 5_000), (t0 + NS_PER_S, 3_900))  # 11 cents

    widened = run([obs(moves=moved)]).markets[0]
    paused = run([obs(moves=crashed)]).markets[0]
    later = run([obs(moves=crashed)], ts=t0 + 13 * NS_PER_S).markets[0]

    assert widened.state is ACTIVE and widened.widen_px == 100
    assert widened.gate == RiskGate(state=ACTIVE, widen_px=100, rule="fast_move", detail=widened.gate.detail)
    r = widened.reasons[0]
    assert (r.rule, r.observed, r.limit, r.unit, r.widen_px) == ("fast_move", 400, 300, "px", 100)
    assert describe(r) == "active by fast_move [m1]: 0.04 >= 0.03, half-spread +0.01 (within 10 s)"
    assert paused.state is PAUSED and paused.widen_px == 0 and paused.gate.widen_px == 0
    assert (paused.reasons[0].observed, paused.reasons[0].limit) == (1_100, 1_000)
    assert later.state is ACTIVE and later.reasons == ()


def test_risk_inventory_hard_limit_is_reduce_only_either_way():
    long_ = run([obs(inv=long_yes(500))]).markets[0]
    short = run([obs(inv=Inventory(no_qty=600 * SHARE))]).markets[0]
    under = run([obs(inv=long_yes(499))]).markets[0]

    assert long_.state is REDUCE_ONLY and short.state is REDUCE_ONLY and under.state is ACTIVE
    r = short.reasons[0]
    assert (r.rule, r.observed, r.limit, r.unit) == ("inventory_hard_limit", 600 * SHARE, 500 * SHARE, "qty")
    assert describe(r) == "reduce_only by inventory_hard_limit [m1]: 600 shares >= 500 shares"


def test_risk_error_rate_pauses_a_market_above_the_limit_and_the_book_for_untied_errors():
    errors = record_events(EventWindow(), NOW - 10 * NS_PER_S, 31)

    m = run([obs(errors=errors)]).markets[0]
    at_limit = run([obs(errors=record_events(EventWindow(), NOW, 30))]).markets[0]
    book = run([obs()], book=BookObs(errors=errors))
    gone = run([obs(errors=errors)], ts=NOW + 2 * 60 * NS_PER_S).markets[0]

    assert m.state is PAUSED and (m.reasons[0].rule, m.reasons[0].observed, m.reasons[0].limit) == (
        "error_rate",
        31,
        30,
    )
    assert describe(m.reasons[0]) == "paused by error_rate [m1]: 31/min > 30/min"
    assert at_limit.state is ACTIVE
    assert book.book.state is PAUSED and book.markets[0].state is PAUSED
    assert book.book.reasons[0].scope == "book"
    assert gone.state is ACTIVE


def test_risk_stale_feed_pauses_the_market_and_a_stale_heartbeat_the_book():
    stale = run([obs(feed_age_ns=61 * NS_PER_S)]).markets[0]
    fresh = run([obs(feed_age_ns=60 * NS_PER_S)]).markets[0]
    hb = run([obs()], book=BookObs(heartbeat_age_ns=9 * NS_PER_S))
    sim = run([obs(feed_age_ns=None)], book=BookObs(heartbeat_age_ns=None))

    assert stale.state is PAUSED and describe(stale.reasons[0]) == "paused by feed_stale [m1]: 61 s > 60 s"
    assert fresh.state is ACTIVE
    assert hb.book.state is PAUSED and hb.markets[0].gate.rule == "heartbeat_stale"
    assert (hb.book.reasons[0].observed, hb.book.reasons[0].limit) == (9 * NS_PER_S, 8 * NS_PER_S)
    assert sim.book.state is ACTIVE and sim.markets[0].state is ACTIVE


def test_risk_ledger_drift_pauses_the_market_with_the_ledgers_reason():
    why = "position drift: venue YES +5000000 NO +0 (1e-6 shares) vs ledger"

    m = run([obs(drift=why, drift_qty=5 * SHARE)]).markets[0]

    assert m.state is PAUSED and m.reasons[0].rule == "drift" and m.reasons[0].observed == 5 * SHARE
    assert why in m.gate.detail


def test_risk_operator_states_apply_to_the_market_or_the_book():
    paused = run([obs("a", operator=PAUSED, operator_note="news at 14:00"), obs("b")])
    reduce = run([obs("a", inv=long_yes(5)), obs("b")], book=BookObs(operator=REDUCE_ONLY))

    assert by_market(paused)["a"].state is PAUSED and by_market(paused)["b"].state is ACTIVE
    assert "news at 14:00" in by_market(paused)["a"].gate.detail
    assert reduce.book.state is REDUCE_ONLY and all(m.state is REDUCE_ONLY for m in reduce.markets)


def test_risk_worst_rule_wins_and_every_fired_rule_is_reported_worst_first():
    t0 = NOW - 5 * NS_PER_S
    o = obs(
        inv=long_yes(600),
        moves=window((t0, 5_000), (t0 + 1, 5_400)),
        feed_age_ns=90 * NS_PER_S,
    )

    m = run([o]).markets[0]

    assert m.state is PAUSED
    assert [(r.rule, r.state) for r in m.reasons] == [
        ("feed_stale", PAUSED),
        ("inventory_hard_limit", REDUCE_ONLY),
        ("fast_move", ACTIVE),
    ]
    assert m.gate.rule == "feed_stale" and m.gate.widen_px == 0


def test_risk_halt_is_sticky_until_the_operator_resumes():
    crashed = obs(inv=long_yes(400))
    carries = {"m1": day_start(crashed)}
    halted = run([marked_down(crashed, 2_000)], carries)
    assert halted.markets[0].state is HALTED

    recovered = run([crashed], {"m1": halted.markets[0].carry})  # the price came back
    next_day = run([crashed], {"m1": recovered.markets[0].carry}, ts=NOW + NS_PER_DAY)
    resumed = run([crashed], {"m1": resume(next_day.markets[0].carry)}, ts=NOW + NS_PER_DAY)

    assert recovered.markets[0].state is HALTED and recovered.markets[0].reasons == ()
    assert recovered.markets[0].halt == halted.markets[0].halt  # the numbers when it latched
    assert recovered.markets[0].gate.detail.endswith(f"latched at {NOW} ns")
    assert next_day.markets[0].state is HALTED
    assert resumed.markets[0].state is ACTIVE and resumed.markets[0].carry.halt is None


def test_risk_resume_with_the_loss_still_there_halts_again():
    crashed = obs(inv=long_yes(400))
    carries = {"m1": day_start(crashed)}
    halted = run([marked_down(crashed, 2_000)], carries)

    again = run([marked_down(crashed, 2_000)], {"m1": resume(halted.markets[0].carry)}, ts=NOW + 1)

    assert again.markets[0].state is HALTED and again.markets[0].halt.ts_ns == NOW + 1


def test_risk_book_halt_survives_the_markets_recovery_and_resume_clears_it():
    a = obs("a", long_yes(400))
    carries = {"a": day_start(a)}
    v = run([marked_down(a, 2_500)], carries, limits=BOOK_SCOPE)
    assert v.book.halt is not None

    later = run([a], {"a": v.markets[0].carry}, book_carry=v.book.carry, limits=BOOK_SCOPE)
    resumed = run([a], {"a": v.markets[0].carry}, book_carry=resume(v.book.carry), limits=BOOK_SCOPE)

    assert later.book.state is HALTED and later.markets[0].state is HALTED
    assert resumed.book.state is ACTIVE and resumed.markets[0].state is ACTIVE


def test_risk_day_rollover_takes_a_new_baseline_and_resets_the_peak():
    o = obs(inv=long_yes(100))
    day1 = run([marked_down(o, 4_000)], {"m1": day_start(o)})
    assert day1.markets[0].pnl.day_pnl_usdc6 == -10 * USD

    day2 = run(
        [marked_down(o, 3_900)],
        {"m1": day1.markets[0].carry},
        book_carry=BookCarry(day=utc_day(NOW), peak_pnl_usdc6=50 * USD),
        ts=(utc_day(NOW) + 1) * NS_PER_DAY,  # 00:00 UTC the next day
    )

    m = day2.markets[0]
    assert m.carry.day is not None and m.carry.day.day == utc_day(NOW) + 1
    assert m.pnl.day_pnl_usdc6 == 0 and day2.book.peak_pnl_usdc6 == 0
    assert day2.book.carry.day == utc_day(NOW) + 1


def test_risk_pnl_splits_into_realised_less_fees_and_unrealised():
    inv = long_yes(100, px=4_000)
    o = obs(inv=inv, mark=4_000)
    carries = {"m1": day_start(o)}
    sold = apply_fill(inv, Outcome.YES, Side.SELL, 4_500, 50 * SHARE, 100_000)  # +2.5 USDC, 0.1 fee

    m = run([obs(inv=sold, mark=4_200)], carries).markets[0]

    assert m.pnl.day_realized_usdc6 == 2_400_000
    assert m.pnl.day_unrealized_usdc6 == 1_000_000  # 50 left, 0.40 -> 0.42
    assert m.pnl.day_pnl_usdc6 == 3_400_000


def test_risk_restore_day_carries_todays_pnl_onto_a_rebuilt_inventory():
    # After a restart the venue's positions come back with cash = -cost: another origin.
    rebuilt = Inventory(yes_qty=100 * SHARE, cash_usdc6=-40 * USD, yes_cost_usdc6=40 * USD)

    day = restore_day(rebuilt, 4_500, NOW, -30 * USD, -35 * USD)
    m = assess_market(obs(inv=rebuilt, mark=4_500), MarketCarry(day=day), LIMITS, NOW)

    assert m.pnl.day_pnl_usdc6 == -30 * USD and m.pnl.day_realized_usdc6 == -35 * USD


def test_risk_assess_market_then_book_is_evaluate():
    a, b = obs("a", long_yes(400)), obs("b", long_yes(10), feed_age_ns=70 * NS_PER_S)
    carries = {"a": day_start(a), "b": day_start(b)}
    seen = [marked_down(a, 2_500), b]

    whole = run(seen, carries, limits=BOOK_SCOPE)
    parts = assess_book(
        [assess_market(o, carries[o.market], BOOK_SCOPE, NOW) for o in seen],
        BookObs(),
        BookCarry(day=utc_day(NOW)),
        BOOK_SCOPE,
        NOW,
    )

    assert parts == whole


# --- config ------------------------------------------------------------------------------------------


def test_risk_limits_default_loss_stops_are_the_exposure_caps_and_the_rest_documented():
    cfg = Config(inventory=InventoryConfig(per_market_ev_cap=50.0, global_ev_cap=400.0))

    lim = risk_limits(cfg)

    assert lim.daily_loss_stop_usdc6 == 400 * USD and lim.market_daily_loss_stop_usdc6 == 50 * USD
    assert lim.max_drawdown_usdc6 is None and lim.inventory_hard_limit_qty is None
    assert (lim.fast_move_px, lim.widen_px, lim.pause_move_px) == (300, 100, 1_000)
    assert lim.fast_move_window_ns == 10 * NS_PER_S and not lim.halt_book_on_market_loss
    assert lim.max_errors_per_min == 30
    assert (lim.max_feed_age_ns, lim.max_heartbeat_age_ns) == (60 * NS_PER_S, 8 * NS_PER_S)


def test_shipped_risk_config_has_a_real_risk_section():
    lim = risk_limits(load_config("configs/risk.yaml"))

    assert lim.daily_loss_stop_usdc6 == 400 * USD and lim.market_daily_loss_stop_usdc6 == 25 * USD
    assert lim.max_drawdown_usdc6 == 300 * USD and lim.inventory_hard_limit_qty == 1_000 * SHARE


def test_market_maker_yaml_documents_the_risk_defaults_in_its_commented_section():
    lines = Path("configs/market_maker.yaml").read_text().splitlines()
    start = lines.index("# risk:")
    block = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        block.append(line[2:])

    section = msgspec.yaml.decode("\n".join(block).encode(), type=dict[str, RiskConfig])

    assert section["risk"] == RiskConfig()


# --- properties --------------------------------------------------------------------------------------


def _with_loss(o, extra_usdc6):
    return msgspec.structs.replace(
        o, inv=msgspec.structs.replace(o.inv, cash_usdc6=o.inv.cash_usdc6 - extra_usdc6)
    )


def ev(book, ts=NOW):
    observations, carries, bobs, bcarry, limits = book
    return evaluate(observations, bobs, carries, bcarry, limits, ts)


@st.composite
def books(draw, n_max=3):
    n = draw(st.integers(1, n_max))
    window_ns = draw(st.integers(1, 60)) * NS_PER_S
    observations = [draw(market_obs(f"m{i}", window_ns=window_ns)) for i in range(n)]
    carries = {o.market: draw(market_carries()) for o in observations}
    limits = msgspec.structs.replace(draw(limits_st()), fast_move_window_ns=window_ns)
    return observations, carries, draw(book_obs()), draw(book_carries()), limits


@given(books(), st.data(), st.integers(0, 1_000 * USD))
def test_more_loss_never_gives_a_milder_state(book, data, extra):
    observations, carries, bobs, bcarry, limits = book
    k = data.draw(st.integers(0, len(observations) - 1))
    worse = [_with_loss(o, extra) if i == k else o for i, o in enumerate(observations)]

    a = ev(book)
    b = ev((worse, carries, bobs, bcarry, limits))

    assert b.book.state >= a.book.state
    assert all(y.state >= x.state for x, y in zip(a.markets, b.markets, strict=True))


def _expected_own_states(o, carry, lim, ts):
    # The rules written out plainly: what each of the market's own rules asks for.
    value = mark_to_market(o.inv, o.mark_px)
    base = carry.day.start_value_usdc6 if carry.day is not None else value
    out = {}
    if o.operator:
        out["operator"] = o.operator
    if base - value >= lim.market_daily_loss_stop_usdc6:
        out["market_daily_loss_stop"] = HALTED
    if o.moves is not None:
        move = mid_move_px(o.moves, ts)
        if lim.pause_move_px is not None and move >= lim.pause_move_px:
            out["fast_move"] = PAUSED
        elif lim.fast_move_px is not None and move >= lim.fast_move_px:
            out["fast_move"] = ACTIVE
    if (
        lim.inventory_hard_limit_qty is not None
        and abs(o.inv.yes_qty - o.inv.no_qty) >= lim.inventory_hard_limit_qty
    ):
        out["inventory_hard_limit"] = REDUCE_ONLY
    if lim.max_errors_per_min is not None and events_last_minute(o.errors, ts) > lim.max_errors_per_min:
        out["error_rate"] = PAUSED
    if lim.max_feed_age_ns is not None and o.feed_age_ns is not None and o.feed_age_ns > lim.max_feed_age_ns:
        out["feed_stale"] = PAUSED
    if o.drift:
        out["drift"] = PAUSED
    return out


@given(books())
def test_every_rule_that_fires_is_reported_and_the_worst_one_sets_the_state(book):
    observations, carries, _, _, limits = book

    v = ev(book)

    for o, m in zip(observations, v.markets, strict=True):
        own = [r for r in m.reasons if r.market == o.market]
        assert {r.rule: r.state for r in own} == _expected_own_states(o, carries[o.market], limits, NOW)
        assert [r.state for r in m.reasons] == sorted((r.state for r in m.reasons), reverse=True)
        worst = max([r.state for r in m.reasons], default=ACTIVE)
        latched = m.halt is not None
        assert m.state == (HALTED if latched else max(worst, v.book.state))
        assert m.gate.state == m.state
        if m.state is ACTIVE:
            assert m.gate.rule == ("fast_move" if m.widen_px else "")
    book_worst = max([r.state for r in v.book.reasons], default=ACTIVE)
    assert v.book.state == (HALTED if v.book.halt is not None else book_worst)
    assert {(r.rule, r.market): r.state for r in v.book.reasons} == _expected_book_states(book, v)


def _expected_book_states(book, v):
    observations, carries, bobs, bcarry, lim = book
    out = {}
    if bobs.operator:
        out["operator", ""] = bobs.operator
    if lim.halt_book_on_market_loss:
        for o in observations:
            if _expected_own_states(o, carries[o.market], lim, NOW).get("market_daily_loss_stop"):
                out["market_daily_loss_stop", o.market] = HALTED
    pnl = sum(
        mark_to_market(o.inv, o.mark_px)
        - (
            carries[o.market].day.start_value_usdc6
            if carries[o.market].day
            else mark_to_market(o.inv, o.mark_px)
        )
        for o in observations
    )
    assert v.book.day_pnl_usdc6 == pnl
    if -pnl >= lim.daily_loss_stop_usdc6:
        out["daily_loss_stop", ""] = HALTED
    if lim.max_drawdown_usdc6 is not None and max(bcarry.peak_pnl_usdc6, pnl) - pnl >= lim.max_drawdown_usdc6:
        out["max_drawdown", ""] = HALTED
    if lim.max_errors_per_min is not None and events_last_minute(bobs.errors, NOW) > lim.max_errors_per_min:
        out["error_rate", ""] = PAUSED
    hb = bobs.heartbeat_age_ns
    if lim.max_heartbeat_age_ns is not None and hb is not None and hb > lim.max_heartbeat_age_ns:
        out["heartbeat_stale", ""] = PAUSED
    return out


@given(books())
def test_the_book_state_bounds_every_market(book):
    v = ev(book)

    assert all(m.state >= v.book.state for m in v.markets)
    if v.book.state is HALTED:
        assert all(m.gate.state is HALTED and m.halt is not None for m in v.markets)


@given(books(), st.lists(st.tuples(st.integers(0, 2_000 * USD), st.integers(0, NS_PER_DAY)), max_size=5))
def test_a_halt_stays_through_anything_until_resume(book, steps):
    observations, _, _, _, limits = book
    v = ev(book)
    seen = observations
    halted = {m.market for m in v.markets if m.halt is not None}
    book_halted = v.book.halt is not None
    ts = NOW
    for extra, dt in steps:  # any later inputs: losses, recoveries, other days
        ts += dt
        carries = {m.market: m.carry for m in v.markets}
        seen = [_with_loss(o, -extra) for o in observations]  # gains: no rule asks for a halt
        v = evaluate(seen, BookObs(), carries, v.book.carry, limits, ts)

        assert {m.market for m in v.markets if m.state is HALTED} >= halted
        assert (v.book.state is HALTED) >= book_halted

    resumed = evaluate(
        seen, BookObs(), {m.market: resume(m.carry) for m in v.markets}, resume(v.book.carry), limits, ts
    )

    # Only a rule that still fires halts after a resume.
    assert (resumed.book.state is HALTED) == any(r.state is HALTED for r in resumed.book.reasons)
    for m in resumed.markets:
        assert (m.state is HALTED) == any(r.state is HALTED for r in m.reasons)


@given(books(), st.integers(1, 30), st.integers(0, NS_PER_DAY - 1))
def test_day_rollover_resets_the_baseline_and_the_peak(book, days, into_day):
    observations, carries, bobs, bcarry, limits = book
    ts = (utc_day(NOW) + days) * NS_PER_DAY + into_day
    quiet = [msgspec.structs.replace(o, moves=None) for o in observations]

    v = ev((quiet, carries, bobs, bcarry, limits), ts)

    assert all(m.pnl.day_pnl_usdc6 == 0 and m.carry.day.day == utc_day(ts) for m in v.markets)
    assert v.book.day_pnl_usdc6 == 0 and v.book.peak_pnl_usdc6 == 0 and v.book.carry.day == utc_day(ts)
    fired = {r.rule for m in v.markets for r in m.reasons} | {r.rule for r in v.book.reasons}
    assert not fired & {"market_daily_loss_stop", "daily_loss_stop", "max_drawdown"}


@given(books(), st.integers(0, NS_PER_DAY - 1))
def test_within_the_day_the_baseline_is_kept(book, into_day):
    observations, carries, _, _, _ = book
    ts = utc_day(NOW) * NS_PER_DAY + into_day

    v = ev(book, ts)

    for o, m in zip(observations, v.markets, strict=True):
        c = carries[o.market]
        if c.day is not None:
            assert m.carry.day == c.day
            assert m.pnl.day_pnl_usdc6 == mark_to_market(o.inv, o.mark_px) - c.day.start_value_usdc6


@given(limits_st(), st.lists(st.integers(0, 10_000), min_size=1, max_size=4))
def test_a_larger_move_never_gives_a_milder_market_state(limits, mids):
    t0 = NOW - NS_PER_S
    small = window(
        *[(t0 + i, m) for i, m in enumerate(mids)], window_s=limits.fast_move_window_ns // NS_PER_S
    )
    large = record_mid(small, 0 if mids[-1] >= 5_000 else 10_000, t0 + len(mids))

    a = assess_market(obs(moves=small), MarketCarry(), limits, NOW)
    b = assess_market(obs(moves=large), MarketCarry(), limits, NOW)

    assert mid_move_px(large, NOW) >= mid_move_px(small, NOW)
    assert b.state >= a.state
    assert b.widen_px >= a.widen_px or b.state is PAUSED


# --- the windows -------------------------------------------------------------------------------------


def _in_force_range(samples, start, end):
    # Mids in force at some time in [start, end]: the last one set at or before start, and any after.
    before = [m for t, m in samples if t <= start]
    during = [m for t, m in samples if start < t <= end]
    mids = ([before[-1]] if before else []) + during
    return max(mids) - min(mids) if mids else 0


@given(
    st.integers(1, 120),
    st.lists(st.tuples(st.integers(0, 300 * NS_PER_S), st.integers(0, 10_000)), max_size=30),
    st.integers(0, 60 * NS_PER_S),
)
@example(window_s=10, raw=[(0, 5_000), (100 * NS_PER_S, 3_000)], after=0)  # a jump after a quiet spell
def test_mid_window_never_understates_a_move_and_overstates_by_at_most_one_bucket(window_s, raw, after):
    samples = sorted(raw)
    w = MidWindow(window_ns=window_s * NS_PER_S)
    for t, m in samples:
        w = record_mid(w, m, t)
    end = (samples[-1][0] if samples else 0) + after
    width = w.window_ns // MOVE_BUCKETS

    move = mid_move_px(w, end)

    assert move >= _in_force_range(samples, end - w.window_ns, end)
    assert move <= _in_force_range(samples, end - w.window_ns - width, end)
    assert len(w.buckets) <= MOVE_BUCKETS + 2


def test_mid_window_same_bucket_same_mid_is_the_same_object():
    w = window((NOW, 5_000))

    assert record_mid(w, 5_000, NOW + 1) is w


@given(
    st.lists(st.tuples(st.integers(0, 300 * NS_PER_S), st.integers(1, 5)), max_size=40), st.integers(0, 90)
)
def test_event_window_counts_the_last_minute_to_one_bucket(raw, after_s):
    events = sorted(raw)
    w = EventWindow()
    for t, n in events:
        w = record_events(w, t, n)
    end = (events[-1][0] if events else 0) + after_s * NS_PER_S
    minute = 60 * NS_PER_S

    counted = events_last_minute(w, end)

    assert counted >= sum(n for t, n in events if end - minute < t <= end)
    assert counted <= sum(n for t, n in events if end - minute - ERROR_BUCKET_NS < t <= end)
    assert len(w.buckets) <= minute // ERROR_BUCKET_NS + 2


# --- the config section --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("risk:\n  pause_move_cents: 2\n", "risk.pause_move_cents: 2.0 must be above fast_move_cents 3.0"),
        ("risk:\n  daily_loss_stop_usd: 0\n", "risk.daily_loss_stop_usd: expected `float` > 0.0"),
        ("risk:\n  fast_move_cents: 1.234\n", "risk.fast_move_cents: 1.234 has more than 2 decimals"),
        ("risk:\n  halt_scope: everything\n", "risk.halt_scope: invalid enum value 'everything'"),
        ("risk:\n  max_feed_age_s: .inf\n", "risk.max_feed_age_s: expected `float` <= 86400.0"),
        ("risk:\n  max_errors_per_min: 2.5\n", "risk.max_errors_per_min: expected `int | null`, got `float`"),
        ("risk:\n  daily_loss_stop: 5\n", "risk.daily_loss_stop: unknown key"),
    ],
)
def test_risk_config_mistakes_name_the_key(tmp_path, yaml_text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)

    with pytest.raises(ConfigFileError) as err:
        load_config(path)

    assert str(err.value).startswith(f"{path}: {expected}"), str(err.value)


def test_risk_config_null_turns_an_optional_rule_off():
    cfg = msgspec.yaml.decode(
        b"risk:\n  fast_move_cents: null\n  pause_move_cents: null\n  max_feed_age_s: null\n", type=Config
    )

    lim = risk_limits(cfg)
    o = obs(moves=window((NOW - 1, 1_000), (NOW, 9_000)), feed_age_ns=10**15)

    assert lim.fast_move_px is None and lim.pause_move_px is None and lim.max_feed_age_ns is None
    assert assess_market(o, MarketCarry(), lim, NOW).state is ACTIVE


def test_describe_names_state_rule_market_and_numbers():
    o = obs(inv=long_yes(400))
    m = run([marked_down(o, 2_400)], {"m1": day_start(o)}).markets[0]

    assert describe(m.reasons[0]) == "halted by market_daily_loss_stop [m1]: 104 USDC >= 100 USDC"


@pytest.mark.parametrize("state", list(TradingState))
def test_the_generators_reach_every_state_of_a_market_and_of_the_book(state):
    # Otherwise the properties above would prove little.
    many = settings(max_examples=2_000, database=None, phases=[Phase.generate])

    find(books(), lambda b: any(m.state is state for m in ev(b).markets), settings=many)
    find(books(), lambda b: ev(b).book.state is state, settings=many)
