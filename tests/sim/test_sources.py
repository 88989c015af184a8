"""The simulator's data sources: determinism, book consistency, adverse selection, config dispatch."""

from __future__ import annotations

import bisect
import statistics
from pathlib import Path

import msgspec
import pytest

from core.book import L2Book
from core.messages import BookSnapshot, MarketResolved, TickSizeChanged
from core.units import ORDER_QTY_STEP, PX_ONE, QTY_ONE, Side
from sim.sources import BboCsvSource, HbtNpzSource, SourceConfig, SyntheticSource, load_tapes
from sim.sources.hbt_npz import write_npz
from sim.sources.synthetic import generate
from sim.tape import OP_ASK, OP_BID, OP_BUY, OP_SELL, OP_SPECIAL, MarketTape

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EXCERPT = FIXTURES / "datasets" / "bbo_polls_2026-07-10_excerpt.csv.gz"
SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "data" / "bbo_polls_2026-07-10_liquid.csv.gz"
NYY_WSH = "asc-mlb-nyy-wsh-2026-07-10-neg-1pt5"
SMALL = SyntheticSource(markets=3, duration_s=600, events_per_s=20.0)


def columns(tape: MarketTape) -> tuple[list[int], ...]:
    return list(tape.ts), list(tape.op), list(tape.px), list(tape.qty)


def same_tapes(a: list[MarketTape], b: list[MarketTape]) -> bool:
    return len(a) == len(b) and all(
        x.info == y.info and columns(x) == columns(y) and x.specials == y.specials
        for x, y in zip(a, b, strict=True)
    )


def replay_checked(tape: MarketTape, *, never_crossed: bool, refills: bool = False) -> L2Book:
    """Replay a tape through L2Book, asserting the invariants every source promises.

    The tape opens with a snapshot; levels are never negative; every trade prints at the best
    displayed price of the side it hits, for no more than is displayed there, and is followed by
    that level's new total (with ``refills``, an emptied level may come back at once). With
    ``never_crossed`` the book is never crossed or locked; otherwise only at rest (between
    timestamps).
    """
    assert tape.op[0] == OP_SPECIAL
    assert isinstance(tape.specials[0], BookSnapshot)
    book = L2Book(tick_px=tape.info.tick_px)
    pending: tuple[Side, int, int] | None = None
    n = len(tape)
    for i in range(n):
        op, px, qty, ts = tape.op[i], tape.px[i], tape.qty[i], tape.ts[i]
        if i:
            assert ts >= tape.ts[i - 1]
        if pending is not None:
            side, p, left = pending
            assert op == (OP_BID if side is Side.BUY else OP_ASK), f"event {i}: no level after a trade"
            assert p == px, f"event {i}: level after a trade"
            assert qty == left or (refills and left == 0 and qty > 0), f"event {i}: level after a trade"
            pending = None
        if op == OP_SPECIAL:
            ev = tape.specials[i]
            if isinstance(ev, BookSnapshot):
                book.apply_snapshot(ev.bids, ev.asks, ev.ts_ns, ev.tick_px, ev.min_qty)
        elif op in (OP_BUY, OP_SELL):
            hit = Side.SELL if op == OP_BUY else Side.BUY
            best = book.ask_px if op == OP_BUY else book.bid_px
            assert px == best, f"event {i}: trade at {px}, best {best}"
            shown = book.qty_at(hit, px)
            assert 0 < qty <= shown, f"event {i}: trade of {qty} against {shown}"
            pending = (hit, px, shown - qty)
        else:
            assert qty >= 0
            assert px % tape.info.tick_px == 0
            book.set_level(Side.BUY if op == OP_BID else Side.SELL, px, qty, ts)
        at_rest = i + 1 == n or tape.ts[i + 1] != ts
        if (never_crossed or at_rest) and book.bid_px >= 0 and book.ask_px <= PX_ONE:
            assert book.bid_px < book.ask_px, f"event {i}: crossed book {book.bid_px}/{book.ask_px}"
    return book


def taker_markouts(tape: MarketTape, horizon_s: float) -> list[float]:
    """Signed mid move (Px) from just before each taker to ``horizon_s`` later."""
    book = L2Book(tick_px=tape.info.tick_px)
    times: list[int] = []
    mids2: list[int] = []
    takers: list[tuple[int, int, int]] = []
    for i in range(len(tape)):
        op, ts = tape.op[i], tape.ts[i]
        if op == OP_SPECIAL:
            ev = tape.specials[i]
            if isinstance(ev, BookSnapshot):
                book.apply_snapshot(ev.bids, ev.asks, ev.ts_ns)
        elif op in (OP_BUY, OP_SELL):
            if not takers or takers[-1][0] != ts:  # the first print of a sweep
                takers.append((ts, 1 if op == OP_BUY else -1, book.bid_px + book.ask_px))
        else:
            book.set_level(Side.BUY if op == OP_BID else Side.SELL, tape.px[i], tape.qty[i], ts)
        times.append(ts)
        mids2.append(book.bid_px + book.ask_px)
    out = []
    for ts, sign, mid2 in takers:
        j = bisect.bisect_right(times, ts + int(horizon_s * 1e9)) - 1
        out.append(sign * (mids2[j] - mid2) / 2)
    return out


# --- synthetic ---------------------------------------------------------------------------------


def test_synthetic_same_seed_gives_identical_tapes():
    a = generate(SMALL, 7)

    b = generate(SMALL, 7)

    assert same_tapes(a, b)


def test_synthetic_different_seed_gives_different_tapes():
    a = generate(SMALL, 7)

    b = generate(SMALL, 8)

    assert not same_tapes(a, b)
    assert [t.info.market for t in a] == ["syn-00", "syn-01", "syn-02"]


def test_synthetic_books_stay_consistent_and_never_cross():
    spec = msgspec.structs.replace(SMALL, markets=4, informed_fraction=0.5, jumps_per_hour=60.0, resolve=True)

    tapes = generate(spec, 3)

    for tape in tapes:
        replay_checked(tape, never_crossed=True)
        assert any(op in (OP_BUY, OP_SELL) for op in tape.op)


@pytest.mark.parametrize("tick_px", [1, 10, 1000])
def test_synthetic_other_ticks_stay_on_grid(tick_px):
    spec = SyntheticSource(markets=2, duration_s=300, tick_px=tick_px, half_spread_px=tick_px)

    tapes = generate(spec, 1)

    for tape in tapes:
        assert tape.info.tick_px == tick_px
        replay_checked(tape, never_crossed=True)


def test_synthetic_event_density_matches_target():
    spec = SyntheticSource(markets=2, duration_s=2000, events_per_s=15.0)

    tapes = generate(spec, 11)

    for tape in tapes:
        assert 0.95 * 30_000 <= len(tape) <= 1.05 * 30_000
        assert (tape.ts[-1] - tape.ts[0]) / 1e9 <= 2000


def test_synthetic_market_info_carries_config():
    spec = SyntheticSource(markets=1, duration_s=10, fee_rate=0.04, min_qty=15 * QTY_ONE, tick_px=10)

    (tape,) = generate(spec, 1)

    assert tape.info.fee_rate_ppm == 40_000
    assert (tape.info.min_qty, tape.info.tick_px) == (15 * QTY_ONE, 10)
    assert (tape.info.yes_token, tape.info.no_token) == ("syn-00-yes", "syn-00-no")


def test_synthetic_resolution_follows_final_fair_value():
    # Almost no time passes, so the final fair stays near the start price of 0.8.
    spec = SyntheticSource(markets=300, duration_s=5, start_px_min=8000, start_px_max=8000, resolve=True)

    tapes = generate(spec, 5)

    results = []
    for tape in tapes:
        last = tape.specials[len(tape) - 1]
        assert isinstance(last, MarketResolved)
        assert last.ts_ns >= tape.ts[len(tape) - 2]
        results.append(last.yes_won)
    assert 0.72 <= sum(results) / len(results) <= 0.88


def test_synthetic_without_resolve_has_no_resolution():
    tapes = generate(SMALL, 1)

    assert not any(isinstance(ev, MarketResolved) for t in tapes for ev in t.specials.values())


def test_synthetic_informed_takers_cause_adverse_selection():
    # Arrange: frequent jumps give informed takers an edge; the same world without them is the control.
    base = SyntheticSource(markets=4, duration_s=1800, jumps_per_hour=60.0, jump_px=250)
    noise = generate(msgspec.structs.replace(base, informed_fraction=0.0), 3)
    informed = generate(msgspec.structs.replace(base, informed_fraction=0.5), 3)

    # Act: how far the mid moves in the taker's direction within 10 s.
    m_noise = [x for t in noise for x in taker_markouts(t, 10)]
    m_informed = [x for t in informed for x in taker_markouts(t, 10)]

    # Assert: measured 3.4 vs 14.1 Px (standard errors ~1.5; seeds 4-6 alike): keep wide margins.
    assert statistics.mean(m_informed) > 8
    assert statistics.mean(m_informed) > statistics.mean(m_noise) + 6


def test_synthetic_config_rejects_empty_start_range():
    with pytest.raises(msgspec.ValidationError, match="start_px_min"):
        msgspec.convert({"type": "synthetic", "start_px_min": 5050, "start_px_max": 5080}, SourceConfig)


def test_synthetic_sizes_are_whole_shares_in_qty():
    tapes = generate(SMALL, 2)

    for tape in tapes:
        sizes = [q for q in tape.qty if q]
        # Whole shares, except a last level halved on the 0.01-share grid.
        assert sum(q % QTY_ONE == 0 for q in sizes) >= 0.99 * len(sizes)
        assert all(q % ORDER_QTY_STEP == 0 for q in sizes)
        assert statistics.mean(q for q, op in zip(tape.qty, tape.op, strict=True) if op == OP_BUY) > QTY_ONE


@pytest.mark.parametrize(
    ("field", "value"),
    [("min_qty", 500), ("min_qty", 5 * QTY_ONE + 1), ("maker_qty_mean", 5_000), ("taker_qty_mean", 2_000)],
)
def test_synthetic_config_refuses_sizes_below_the_unit_they_mean(field, value):
    # Sizes are Qty (1e-6 share): a value in the old 0.01-share unit would be a speck, so it is refused.
    with pytest.raises(msgspec.ValidationError, match=field):
        msgspec.convert({"type": "synthetic", field: value}, SourceConfig)


def test_synthetic_config_rejects_unknown_field():
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert({"type": "synthetic", "marketz": 3}, SourceConfig)


# --- BBO polls CSV ------------------------------------------------------------------------------


def polls_at_rest(tape: MarketTape) -> dict[int, tuple[int, int]]:
    """Top of book after the last event of each timestamp."""
    book = L2Book(tick_px=tape.info.tick_px)
    out = {}
    for i in range(len(tape)):
        op, ts = tape.op[i], tape.ts[i]
        if op == OP_SPECIAL:
            ev = tape.specials[i]
            assert isinstance(ev, BookSnapshot)
            book.apply_snapshot(ev.bids, ev.asks, ev.ts_ns)
        elif op in (OP_BID, OP_ASK):
            book.set_level(Side.BUY if op == OP_BID else Side.SELL, tape.px[i], tape.qty[i], ts)
        out[ts] = (book.bid_px, book.ask_px)
    return out


def test_bbo_auto_selection_skips_wide_and_one_sided_markets():
    spec = BboCsvSource(path=str(EXCERPT))

    tapes = load_tapes(spec, 1, FIXTURES)

    assert [t.info.market for t in tapes] == [NYY_WSH, "aec-mlb-az-lad-2026-07-10"]


def test_bbo_relative_path_resolves_against_base_dir():
    spec = BboCsvSource(path="datasets/bbo_polls_2026-07-10_excerpt.csv.gz", max_markets=1)

    (tape,) = load_tapes(spec, 1, FIXTURES)

    assert tape.info.market == NYY_WSH


def test_bbo_opening_book_is_the_first_poll_exactly():
    spec = BboCsvSource(path=str(EXCERPT), slugs=(NYY_WSH,))

    (tape,) = load_tapes(spec, 1, FIXTURES)

    snap = tape.specials[0]
    assert isinstance(snap, BookSnapshot)
    assert (snap.bids[0][0], snap.asks[0][0]) == (4750, 4800)  # "0.475", "0.48"
    assert snap.ts_ns == 1_783_715_146 * 10**9  # 2026-07-10T20:25:46Z
    assert tape.info.tick_px == 50  # every price on a 0.005 grid: the venue tick 0.005
    assert snap.tick_px == 50
    assert [p for p, _ in snap.bids] == [4750, 4700, 4650, 4600, 4550]


@pytest.mark.parametrize("mode", ["hold", "interpolate"])
def test_bbo_displayed_top_follows_the_real_polls(mode):
    spec = BboCsvSource(path=str(EXCERPT), max_markets=2, path_mode=mode, takers_per_s=0.5, updates_per_s=2.0)
    tapes = load_tapes(spec, 5, FIXTURES)

    for tape in tapes:
        polls = _polls(tape.info.market)

        tops = polls_at_rest(tape)

        replay_checked(tape, never_crossed=False, refills=True)
        times = sorted(tops)
        for ts, bid, ask in polls:
            assert tops[times[bisect.bisect_right(times, ts) - 1]] == (bid, ask)


def _polls(slug: str) -> list[tuple[int, int, int]]:
    from sim.sources.bbo_csv import read_polls  # noqa: PLC0415

    return [(p.ts_ns, p.bid_px, p.ask_px) for p in read_polls(EXCERPT, [slug])[slug].polls]


def test_bbo_hold_mode_keeps_the_top_between_polls():
    slug = NYY_WSH
    spec = BboCsvSource(path=str(EXCERPT), slugs=(slug,), updates_per_s=2.0)
    (tape,) = load_tapes(spec, 2, FIXTURES)
    polls = _polls(slug)

    tops = polls_at_rest(tape)

    times = [p[0] for p in polls]
    for ts, top in tops.items():
        k = bisect.bisect_right(times, ts) - 1
        assert top == polls[k][1:], f"at {ts}"


def test_bbo_informed_takers_trade_toward_the_next_poll():
    slug = NYY_WSH
    spec = BboCsvSource(path=str(EXCERPT), slugs=(slug,), informed_fraction=1.0, takers_per_s=1.0)
    (tape,) = load_tapes(spec, 3, FIXTURES)
    polls = _polls(slug)
    times = [p[0] for p in polls]

    trades = [(tape.ts[i], op, tape.px[i]) for i, op in enumerate(tape.op) if op in (OP_BUY, OP_SELL)]

    assert len(trades) > 100
    for ts, op, px in trades:
        nxt = polls[bisect.bisect_right(times, ts)]
        next_mid2 = nxt[1] + nxt[2]
        assert (next_mid2 > 2 * px) if op == OP_BUY else (next_mid2 < 2 * px)


def test_bbo_no_flow_across_long_gaps():
    spec = BboCsvSource(path=str(EXCERPT), max_markets=1, max_gap_s=60.0)

    (tape,) = load_tapes(spec, 1, FIXTURES)

    assert not any(op in (OP_BUY, OP_SELL) for op in tape.op)


def test_bbo_same_seed_same_tapes_and_different_seed_differs():
    spec = BboCsvSource(path=str(EXCERPT))

    a, b, c = (load_tapes(spec, s, FIXTURES) for s in (4, 4, 5))

    assert same_tapes(a, b)
    assert not same_tapes(a, c)


def test_bbo_shipped_excerpt_loads():
    spec = BboCsvSource(path=str(SHIPPED), max_markets=2, max_median_spread_px=100)

    tapes = load_tapes(spec, 1, SHIPPED.parent)

    markets = [t.info.market for t in tapes]
    assert markets == ["tsc-mlb-nyy-wsh-2026-07-10-10pt5", "aec-mlb-nyy-wsh-2026-07-10"]
    for tape in tapes:
        replay_checked(tape, never_crossed=False, refills=True)


def test_bbo_sizes_are_whole_shares_in_qty():
    spec = BboCsvSource(path=str(EXCERPT), max_markets=1, takers_per_s=1.0)

    (tape,) = load_tapes(spec, 1, FIXTURES)

    assert all(q % QTY_ONE == 0 for q in tape.qty)
    assert all(q % QTY_ONE == 0 for _, q in tape.specials[0].bids + tape.specials[0].asks)
    assert any(op == OP_BUY for op in tape.op)


def test_bbo_config_refuses_sizes_below_the_unit_they_mean():
    for field, value in (("min_qty", 500), ("level_qty_mean", 20_000), ("taker_qty_mean", 5_000)):
        with pytest.raises(msgspec.ValidationError, match=field):
            msgspec.convert({"type": "bbo_csv", "path": "a.csv", field: value}, SourceConfig)


def test_bbo_unknown_slug_is_an_error():
    spec = BboCsvSource(path=str(EXCERPT), slugs=("no-such-market",))

    with pytest.raises(ValueError, match="'no-such-market' is not in"):
        load_tapes(spec, 1, FIXTURES)


def test_bbo_no_usable_market_is_an_error():
    spec = BboCsvSource(path=str(EXCERPT), max_median_spread_px=1)

    with pytest.raises(ValueError, match="no usable market"):
        load_tapes(spec, 1, FIXTURES)


def test_bbo_wrong_columns_is_an_error(tmp_path):
    (tmp_path / "x.csv").write_text("ts,market,bid,ask\n2026-07-10T20:00:00,a,0.4,0.5\n")

    with pytest.raises(ValueError, match=r"missing columns \['slug', 'category'\]"):
        load_tapes(BboCsvSource(path="x.csv"), 1, tmp_path)


def test_bbo_bad_price_is_an_error_with_its_line(tmp_path):
    rows = [f"2026-07-10T20:{m:02d}:00,m,sports,0.4,0.5,0.45,0.1,1,1" for m in range(10)]
    rows[3] = "2026-07-10T20:03:00,m,sports,0.4,0.5x,0.45,0.1,1,1"
    header = "ts,slug,category,bid,ask,mid,spread,volume24hr,segment\n"
    (tmp_path / "x.csv").write_text(header + "\n".join(rows))

    with pytest.raises(ValueError, match=r"x\.csv:5: not a decimal number: '0\.5x'"):
        load_tapes(BboCsvSource(path="x.csv"), 1, tmp_path)


def test_bbo_explicit_tick_must_fit_the_prices():
    spec = BboCsvSource(path=str(EXCERPT), slugs=(NYY_WSH,), tick_px=100)

    with pytest.raises(ValueError, match="off the 100 Px grid"):
        load_tapes(spec, 1, FIXTURES)


# --- dispatch ------------------------------------------------------------------------------------


def test_source_config_decodes_each_member_by_type_tag():
    raw = b"""[
        {"type": "synthetic", "markets": 2},
        {"type": "bbo_csv", "path": "a.csv.gz", "slugs": ["x"]},
        {"type": "hbt_npz", "path": "b.npz", "tick_px": 10}
    ]"""

    got = msgspec.json.decode(raw, type=list[SourceConfig])

    assert [type(s) for s in got] == [SyntheticSource, BboCsvSource, HbtNpzSource]
    assert msgspec.json.decode(msgspec.json.encode(got), type=list[SourceConfig]) == got


def test_load_tapes_reads_hbt_npz_relative_to_base_dir(tmp_path):
    (tape,) = generate(SyntheticSource(markets=1, duration_s=60, resolve=True), 2)
    write_npz(tmp_path / "syn.npz", tape, 0.01)
    spec = HbtNpzSource(path="syn.npz", market="syn-00", yes_token="syn-00-yes", no_token="syn-00-no")

    (back,) = load_tapes(spec, 99, tmp_path)

    assert columns(back) == columns(tape)
    assert back.specials == tape.specials
    assert isinstance(back.specials[len(back) - 1], MarketResolved)
    assert not any(isinstance(e, TickSizeChanged) for e in back.specials.values())
