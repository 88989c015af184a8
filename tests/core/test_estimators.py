from hypothesis import given
from hypothesis import strategies as st

from core.estimators import (
    FlowState,
    VolParams,
    VolState,
    flow_imbalance_permille,
    update_flow,
    update_flow_permille,
    update_vol,
)
from core.units import NS_PER_S, Side

P = VolParams(halflife_s=60.0, pull_threshold_px=400, resume_threshold_px=250)

mid_paths = st.lists(st.tuples(st.integers(0, 10 * NS_PER_S), st.floats(100, 9_900)), min_size=1, max_size=40)


def run(path, state=None):
    state = state or VolState()
    t = 0
    states = []
    for dt, mid in path:
        t += dt
        state = update_vol(state, mid, t, P)
        states.append(state)
    return states


def test_vol_of_a_flat_mid_is_zero():
    states = run([(NS_PER_S, 5_000.0)] * 10)

    assert all(s.vol_px == 0 and not s.pulled for s in states)


def test_vol_jump_pulls_at_once_and_resumes_only_below_resume_threshold():
    s = update_vol(VolState(), 5_000.0, 0, P)
    s = update_vol(s, 5_600.0, NS_PER_S, P)  # a 600 px jump: the mid is ~600 px from its mean
    assert s.pulled and s.vol_px >= 400

    states = [s]
    for k in range(2, 600):  # the mid stays at its new level, sampled every second
        states.append(update_vol(states[-1], 5_600.0, k * NS_PER_S, P))

    between = [x for x in states if 250 < x.vol_px < 400]
    assert between and all(x.pulled for x in between)  # between the thresholds: still pulled
    assert not states[-1].pulled and states[-1].vol_px <= 250
    resumed = next(i for i, x in enumerate(states) if not x.pulled)
    assert all(not x.pulled for x in states[resumed:])


def test_vol_of_a_mid_bouncing_between_two_ticks_is_about_half_a_tick():
    s = VolState()
    for k in range(600):
        s = update_vol(s, 5_000.0 if k % 2 else 5_100.0, k * NS_PER_S, P)

    assert 40 <= s.vol_px <= 60 and not s.pulled


@given(mid_paths)
def test_vol_is_non_negative_and_regime_has_hysteresis(path):
    states = run(path)

    prev = VolState()
    for s in states:
        assert s.vol_px >= 0
        if s.vol_px >= P.pull_threshold_px:
            assert s.pulled
        if s.vol_px <= P.resume_threshold_px:
            assert not s.pulled
        if P.resume_threshold_px < s.vol_px < P.pull_threshold_px:
            assert s.pulled == prev.pulled  # in the band the regime never flips
        prev = s


@given(
    st.lists(
        st.tuples(st.sampled_from(list(Side)), st.integers(1, 10_000), st.integers(0, NS_PER_S)), max_size=30
    )
)
def test_flow_imbalance_is_bounded_and_signed_by_dominant_side(trades):
    s = FlowState()
    t = 0
    for side, qty, dt in trades:
        t += dt
        s = update_flow(s, side, qty, t, 30.0)

    imb = flow_imbalance_permille(s, t, 30.0, 0)
    assert -1000 <= imb <= 1000
    if s.buy_qty > s.sell_qty:
        assert imb >= 0
    if s.sell_qty > s.buy_qty:
        assert imb <= 0


def test_flow_below_minimum_volume_is_no_signal():
    s = update_flow(FlowState(), Side.BUY, 1_000, NS_PER_S, 30.0)

    assert flow_imbalance_permille(s, NS_PER_S, 30.0, 5_000) == 0
    assert flow_imbalance_permille(s, NS_PER_S, 30.0, 500) == 1000


def _prints(min_qtys):
    # (side, qty, time step, min flow qty): often no time at all, sometimes back in time (a report
    # stamped before the last print).
    step = st.one_of(st.just(0), st.integers(-NS_PER_S, 100 * NS_PER_S))
    sides = st.sampled_from(list(Side))
    return st.lists(st.tuples(sides, st.integers(1, 10**12), step, min_qtys), max_size=30)


def _update_flow_ref(state, aggressor, qty, ts_ns, halflife_s):
    # The rule as written before the no-time-passed shortcut: decay by every elapsed nanosecond.
    dt_s = max(0, ts_ns - state.ts_ns) / NS_PER_S
    decay = 0.5 ** (dt_s / halflife_s) if state.ts_ns else 1.0
    buy, sell = state.buy_qty * decay, state.sell_qty * decay
    if aggressor is Side.BUY:
        buy += qty
    else:
        sell += qty
    return FlowState(buy_qty=buy, sell_qty=sell, ts_ns=max(ts_ns, state.ts_ns))


def _imbalance_ref(state, ts_ns, halflife_s, min_flow_qty):
    dt_s = max(0, ts_ns - state.ts_ns) / NS_PER_S
    decay = 0.5 ** (dt_s / halflife_s)
    buy, sell = state.buy_qty * decay, state.sell_qty * decay
    total = buy + sell
    if total <= 0 or total < min_flow_qty:
        return 0
    return int(1000 * (buy - sell) / total)


@given(_prints(st.integers(0, 10**7)), st.floats(0.001, 3_600.0))
def test_flow_equals_the_decay_by_elapsed_time_exactly(trades, halflife_s):
    # The shortcuts (no decay when no time passed) give the same floats, bit for bit.
    s = ref = FlowState()
    t = 0
    for side, qty, dt, min_qty in trades:
        t = max(0, t + dt)
        s = update_flow(s, side, qty, t, halflife_s)
        ref = _update_flow_ref(ref, side, qty, t, halflife_s)
        assert s == ref
        assert type(s.buy_qty) is type(ref.buy_qty) and type(s.sell_qty) is type(ref.sell_qty)
        for at in (t - 1, t, t + 1, t + NS_PER_S):
            assert flow_imbalance_permille(s, at, halflife_s, min_qty) == _imbalance_ref(
                ref, at, halflife_s, min_qty
            )


@given(
    _prints(st.one_of(st.just(0), st.integers(0, 10**12))),
    st.floats(0.001, 3_600.0),
    st.integers(-10, 10 * NS_PER_S),
)
def test_update_flow_permille_is_the_update_then_the_imbalance_at_that_instant(trades, halflife_s, t0):
    # The fused call every print makes: the naive rules' state and imbalance, bit for bit (a first
    # print at or before 0 too, and prints stamped back in time).
    s = ref = FlowState()
    t = t0
    for side, qty, dt, min_qty in trades:
        t += dt
        s, flow_pm = update_flow_permille(s, side, qty, t, halflife_s, min_qty)
        ref = _update_flow_ref(ref, side, qty, t, halflife_s)
        assert s == ref
        assert type(s.buy_qty) is type(ref.buy_qty) and type(s.sell_qty) is type(ref.sell_qty)
        assert flow_pm == _imbalance_ref(ref, t, halflife_s, min_qty)
        assert flow_pm == flow_imbalance_permille(s, t, halflife_s, min_qty)
