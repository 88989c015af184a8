"""hftbacktest ``.npz`` event files: exact conversions, round trips, and clear errors on bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from core.markets import MarketInfo
from core.messages import BookSnapshot, MarketResolved, TickSizeChanged
from core.units import PX_ONE, QTY_ONE, TICKS_PX, Outcome, Side, UnitError
from sim.sources import BboCsvSource, load_tapes
from sim.sources.hbt_npz import (
    BUY_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    EXCH_EVENT,
    LOCAL_EVENT,
    SELL_EVENT,
    TICK_SIZE_EVENT,
    TRADE_EVENT,
    HbtNpzSource,
    event_dtype,
    load,
    px_from_float,
    qty_from_float,
    tape_from_events,
    tape_to_events,
    write_npz,
)
from sim.sources.synthetic import SyntheticSource, generate
from sim.tape import OP_ASK, OP_BID, OP_BUY, MarketTape

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SHARE = QTY_ONE
INFO = MarketInfo(market="m", yes_token="m-yes", no_token="m-no", tick_px=100, min_qty=5 * SHARE)
BOTH = EXCH_EVENT | LOCAL_EVENT
TICKS = st.sampled_from(TICKS_PX)  # every venue tick, 0.005 and 0.0025 included


def columns(tape: MarketTape) -> tuple[list[int], ...]:
    return list(tape.ts), list(tape.op), list(tape.px), list(tape.qty)


def rows(*events: tuple[int, int, float, float]) -> np.ndarray:
    """An event array from ``(ev, exch_ts, px, qty)`` tuples."""
    out = np.zeros(len(events), dtype=event_dtype())
    for i, (ev, ts, px, qty) in enumerate(events):
        out[i] = (ev, ts, ts + 1000, px, qty, 0, 0, 0.0)
    return out


def spec_for(path: Path, info: MarketInfo = INFO, **kw: Any) -> HbtNpzSource:
    """A source config whose ``info()`` is ``info``."""
    return HbtNpzSource(
        path=str(path),
        market=info.market,
        yes_token=info.yes_token,
        no_token=info.no_token,
        question=info.question,
        tick_px=info.tick_px,  # type: ignore[arg-type]
        min_qty=info.min_qty,
        **kw,
    )


# --- pure conversions ----------------------------------------------------------------------------


def test_event_dtype_matches_hftbacktest():
    dt = event_dtype()

    assert dt.names == ("ev", "exch_ts", "local_ts", "px", "qty", "order_id", "ival", "fval")
    assert dt.itemsize == 64
    assert (EXCH_EVENT, LOCAL_EVENT, BUY_EVENT, SELL_EVENT) == (1 << 31, 1 << 30, 1 << 29, 1 << 28)


@given(tick=TICKS, data=st.data())
def test_px_from_float_round_trips_every_price_on_the_grid(tick, data):
    px = data.draw(st.integers(0, PX_ONE // tick)) * tick

    assert px_from_float(px / PX_ONE, tick) == px
    assert px_from_float(float(np.float64(px) / PX_ONE), tick) == px


@given(tick=st.sampled_from([t for t in TICKS_PX if t > 1]), data=st.data())
def test_px_from_float_rejects_prices_off_the_grid(tick, data):
    px = data.draw(st.integers(0, PX_ONE).filter(lambda p: p % tick))

    with pytest.raises(UnitError, match="tick grid"):
        px_from_float(px / PX_ONE, tick)


@pytest.mark.parametrize("px", [float("nan"), float("inf"), -0.01, 1.01])
def test_px_from_float_rejects_non_prices(px):
    with pytest.raises(UnitError):
        px_from_float(px, 100)


@given(st.integers(0, 10**15))
@example(192_300_000)  # 192.3 shares
@example(7_575_758)  # 7.575758 shares: 7.575758 * 1e6 is 7575757.999999999 in floats
@example(29)
def test_qty_from_float_round_trips_every_size(qty):
    assert qty_from_float(qty / QTY_ONE) == qty
    assert qty_from_float(float(np.float64(qty) / QTY_ONE)) == qty


@given(st.integers(0, 10**9).filter(lambda n: n % 10))
def test_qty_from_float_rejects_sizes_finer_than_a_micro_share(n):
    with pytest.raises(UnitError, match=r"finer than 1e-6 shares"):
        qty_from_float(n / 10**7)


@pytest.mark.parametrize("qty", [7_575_758, 192_300_000, 1])
def test_qty_from_float_never_rounds_a_float_next_to_a_size(qty):
    exact = qty / QTY_ONE
    for near in (np.nextafter(exact, 0.0), np.nextafter(exact, np.inf)):
        with pytest.raises(UnitError, match="finer than 1e-6 shares"):
            qty_from_float(float(near))


@pytest.mark.parametrize("qty", [float("nan"), float("inf"), -1e-6, 1e10])
def test_qty_from_float_rejects_non_sizes(qty):
    with pytest.raises(UnitError):
        qty_from_float(qty)


# --- round trips ---------------------------------------------------------------------------------


@st.composite
def tapes(draw: st.DrawFn) -> MarketTape:
    """Small consistent-enough tapes with every kind of event, snapshots only as full YES books.

    Prices lie on the tick in force: the market's, then each tick change's (as on the venue).
    """
    tick = draw(TICKS)
    info = msgspec.structs.replace(INFO, tick_px=tick)
    tape = MarketTape(info)
    ts = draw(st.integers(0, 10**18))
    qty = st.integers(0, 10**6 * SHARE)  # any 1e-6-share size up to a million shares

    def px(tick_px: int) -> st.SearchStrategy[int]:
        return st.integers(1, PX_ONE // tick_px - 1).map(lambda i: i * tick_px)

    def snapshot(at: int, tick_px: int) -> BookSnapshot:
        bids = draw(st.dictionaries(px(tick_px), st.integers(1, 10**6 * SHARE), max_size=4))
        asks = draw(st.dictionaries(px(tick_px), st.integers(1, 10**6 * SHARE), max_size=4))
        return BookSnapshot(
            market="m",
            outcome=Outcome.YES,
            ts_ns=at,
            bids=tuple(sorted(bids.items(), reverse=True)),
            asks=tuple(sorted(asks.items())),
            tick_px=tick_px,
            min_qty=info.min_qty,
        )

    tape.special(snapshot(ts, tick))
    current = tick
    for kind in draw(st.lists(st.sampled_from("lltrsx"), max_size=30)):
        ts += draw(st.integers(1, 10**9))
        if kind == "l":
            tape.level(ts, draw(st.sampled_from(Side)), draw(px(current)), draw(qty))
        elif kind == "t":
            tape.trade(
                ts, draw(st.sampled_from(Side)), draw(px(current)), draw(st.integers(1, 10**6 * SHARE))
            )
        elif kind == "r":
            tape.special(MarketResolved(market="m", ts_ns=ts, yes_won=draw(st.booleans())))
        elif kind == "s":
            tape.special(snapshot(ts, current))
        else:  # a tick change, then the snapshot of the new epoch
            current = draw(TICKS)
            tape.special(TickSizeChanged(market="m", outcome=Outcome.YES, ts_ns=ts, tick_px=current))
            ts += 1
            tape.special(snapshot(ts, current))
    return tape


@given(tapes())
def test_tape_to_events_and_back_gives_the_same_tape(tape):
    events = tape_to_events(tape, tape.info.tick_px / PX_ONE)

    back = tape_from_events(events, tape.info)

    assert columns(back) == columns(tape)
    assert back.specials == tape.specials


def test_write_npz_then_load_gives_the_same_synthetic_tape(tmp_path):
    (tape,) = generate(SyntheticSource(markets=1, duration_s=300, resolve=True), 4)
    write_npz(tmp_path / "a.npz", tape, 0.01)

    (back,) = load(spec_for(tmp_path / "a.npz", tape.info))

    assert back.info == tape.info
    assert columns(back) == columns(tape)
    assert back.specials == tape.specials


def test_write_npz_then_load_gives_the_same_bbo_tape(tmp_path):
    spec = BboCsvSource(path="datasets/bbo_polls_2026-07-10_excerpt.csv.gz", max_markets=1)
    (tape,) = load_tapes(spec, 1, FIXTURES)
    write_npz(tmp_path / "b.npz", tape, 0.001, local_latency_ns=5_000_000, compress=False)

    (back,) = load(spec_for(tmp_path / "b.npz", tape.info))

    assert columns(back) == columns(tape)
    assert back.specials == tape.specials


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 7, 1 << 17])
def test_load_in_chunks_gives_the_tape_of_the_whole_array(tmp_path, monkeypatch, chunk_rows):
    # Snapshots, resolution, a partial clear and a tick change, wherever the chunk edges fall.
    (tape,) = generate(SyntheticSource(markets=1, duration_s=60, resolve=True), 5)
    events = tape_to_events(tape, 0.01)
    t = int(events["exch_ts"][-1])
    extra = rows(
        (BOTH | DEPTH_EVENT | BUY_EVENT, t, 0.47, 1.0),
        (BOTH | DEPTH_CLEAR_EVENT | BUY_EVENT, t + 1, 0.46, 0.0),
        (BOTH | DEPTH_CLEAR_EVENT | SELL_EVENT, t + 1, 0.99, 0.0),
        (BOTH | TICK_SIZE_EVENT, t + 2, 0.001, 0.0),
        (BOTH | DEPTH_EVENT | SELL_EVENT, t + 3, 0.471, 2.0),
    )
    events = np.concatenate([events, extra])
    np.savez_compressed(tmp_path / "c.npz", data=events)
    whole = tape_from_events(events, INFO)
    monkeypatch.setattr("sim.sources.hbt_npz.CHUNK_ROWS", chunk_rows)

    (back,) = load(spec_for(tmp_path / "c.npz"))

    assert columns(back) == columns(whole)
    assert back.specials == whole.specials
    assert any(isinstance(ev, TickSizeChanged) for ev in back.specials.values())


def test_written_rows_follow_hftbacktest_conventions():
    tape = MarketTape(INFO)
    snap = BookSnapshot(
        market="m", outcome=Outcome.YES, ts_ns=10, bids=((4700, 5 * SHARE),), asks=((4900, 7_575_758),)
    )
    tape.special(snap)
    tape.trade(20, Side.BUY, 4900, 7_575_758)
    tape.level(20, Side.SELL, 4900, 0)

    ev = tape_to_events(tape, 0.01, local_latency_ns=7)

    assert ev["ev"].tolist() == [
        BOTH | DEPTH_CLEAR_EVENT | BUY_EVENT,
        BOTH | DEPTH_CLEAR_EVENT | SELL_EVENT,
        BOTH | DEPTH_SNAPSHOT_EVENT | BUY_EVENT,
        BOTH | DEPTH_SNAPSHOT_EVENT | SELL_EVENT,
        BOTH | TRADE_EVENT | BUY_EVENT,
        BOTH | DEPTH_EVENT | SELL_EVENT,
    ]
    assert ev["px"][2:].tolist() == [0.47, 0.49, 0.49, 0.49]
    assert ev["qty"][2:].tolist() == [5.0, 7.575758, 7.575758, 0.0]
    assert (ev["local_ts"] - ev["exch_ts"]).tolist() == [7] * 6


# --- reading foreign files -----------------------------------------------------------------------


def test_load_opens_with_the_leading_snapshot_and_keeps_only_exch_rows(tmp_path):
    data = rows(
        (BOTH | DEPTH_CLEAR_EVENT | BUY_EVENT, 100, 0.45, 0.0),
        (BOTH | DEPTH_SNAPSHOT_EVENT | BUY_EVENT, 100, 0.47, 12.5),
        (BOTH | DEPTH_SNAPSHOT_EVENT | BUY_EVENT, 100, 0.45, 3.0),
        (BOTH | DEPTH_CLEAR_EVENT | SELL_EVENT, 100, 0.52, 0.0),
        (BOTH | DEPTH_SNAPSHOT_EVENT | SELL_EVENT, 100, 0.5, 7.0),
        (LOCAL_EVENT | TRADE_EVENT | SELL_EVENT, 150, 0.47, 1.0),  # local-only copy: ignored
        (EXCH_EVENT | TRADE_EVENT | SELL_EVENT, 150, 0.47, 1.0),
        (EXCH_EVENT | DEPTH_EVENT | BUY_EVENT, 150, 0.47, 11.5),
        (BOTH | 150, 160, 0.0, 0.0),  # a user-defined event of someone else: skipped
    )
    np.savez_compressed(tmp_path / "f.npz", data=data)

    (tape,) = load(spec_for(tmp_path / "f.npz"))

    snap = tape.specials[0]
    assert snap == BookSnapshot(market="m", outcome=Outcome.YES, ts_ns=100,
                                bids=((4700, 12_500_000), (4500, 3 * SHARE)), asks=((5000, 7 * SHARE),),
                                tick_px=100, min_qty=5 * SHARE)  # fmt: skip
    assert columns(tape)[1:] == ([4, 3, 0], [0, 4700, 4700], [0, SHARE, 11_500_000])


def test_load_turns_a_partial_clear_into_level_deletions(tmp_path):
    data = rows(
        (BOTH | DEPTH_EVENT | BUY_EVENT, 1, 0.47, 1.0),
        (BOTH | DEPTH_EVENT | BUY_EVENT, 1, 0.46, 1.0),
        (BOTH | DEPTH_EVENT | BUY_EVENT, 1, 0.45, 1.0),
        (BOTH | DEPTH_CLEAR_EVENT | BUY_EVENT, 2, 0.46, 0.0),
    )
    np.savez(tmp_path / "f.npz", data=data)

    (tape,) = load(spec_for(tmp_path / "f.npz"))

    assert tape.specials[0].bids == ()  # the file opens without a snapshot: an empty book first
    ops, pxs, qtys = columns(tape)[1:]
    assert ops == [4, 0, 0, 0, 0, 0]
    assert pxs == [0, 4700, 4600, 4500, 4700, 4600]
    assert qtys == [0, SHARE, SHARE, SHARE, 0, 0]


def test_load_converts_microsecond_timestamps(tmp_path):
    np.savez(tmp_path / "f.npz", data=rows((BOTH | TRADE_EVENT | BUY_EVENT, 1_700_000_000_000_000, 0.5, 1.0)))

    (tape,) = load(spec_for(tmp_path / "f.npz", exch_ts_unit="us"))

    assert tape.ts[-1] == 1_700_000_000_000_000_000


def test_load_accepts_a_plain_npy(tmp_path):
    np.save(tmp_path / "f.npy", rows((BOTH | TRADE_EVENT | BUY_EVENT, 5, 0.5, 1.0)))

    (tape,) = load(spec_for(tmp_path / "f.npy"))

    assert tape.op[-1] == OP_BUY
    assert tape.info.market == "m"
    assert HbtNpzSource(path="x/f.npz").info().market == "f"


@pytest.mark.parametrize(
    ("ev", "px", "qty", "match"),
    [
        (BOTH | DEPTH_EVENT | BUY_EVENT, 0.475, 1.0, r"row 0: price 0\.475 is not on the 0\.01 tick grid"),
        (
            BOTH | DEPTH_EVENT | BUY_EVENT,
            1.5,
            1.0,
            r"row 0: price 1\.5 is not on the 0\.01 tick grid in \[0, 1\]$",
        ),
        (
            BOTH | TRADE_EVENT | SELL_EVENT,
            0.47,
            5e-7,
            r"row 0: size 5e-07 is not an exact size in 1e-6 shares",
        ),
        (BOTH | DEPTH_EVENT | BUY_EVENT, 0.47, 7.5757575, r"row 0: size 7\.5757575 is not an exact size"),
        (BOTH | DEPTH_EVENT | SELL_EVENT, 0.47, -1.0, r"size -1\.0"),
        (BOTH | DEPTH_EVENT | BUY_EVENT | SELL_EVENT, 0.47, 1.0, "exactly one of BUY_EVENT and SELL_EVENT"),
        (BOTH | TRADE_EVENT, 0.47, 1.0, "exactly one of BUY_EVENT and SELL_EVENT"),
        (BOTH | 5 | BUY_EVENT, 0.47, 1.0, "event kind 5 is DEPTH_BBO_EVENT"),
        (BOTH | 10 | BUY_EVENT, 0.47, 1.0, r"event kind 10 is ADD_ORDER_EVENT \(L3\)"),
        (BOTH | 42, 0.47, 1.0, "event kind 42 is an unknown event kind"),
    ],
)
def test_load_rejects_bad_rows_clearly(tmp_path, ev, px, qty, match):
    np.savez(tmp_path / "f.npz", data=rows((ev, 1, px, qty)))

    with pytest.raises(ValueError, match=match):
        load(spec_for(tmp_path / "f.npz"))


def test_load_reads_six_decimal_sizes_exactly_and_refuses_finer_ones_by_row(tmp_path):
    data = rows(
        (BOTH | TRADE_EVENT | BUY_EVENT, 1, 0.66, 7.575758),
        (BOTH | DEPTH_EVENT | SELL_EVENT, 1, 0.66, 0.000001),
        (BOTH | DEPTH_EVENT | BUY_EVENT, 2, 0.65, 192.3),
    )
    np.savez(tmp_path / "ok.npz", data=data)
    data[2]["qty"] = np.nextafter(192.3, np.inf)  # one float step away from 192.3: not a size
    np.savez(tmp_path / "bad.npz", data=data)

    (tape,) = load(spec_for(tmp_path / "ok.npz"))

    assert list(tape.qty)[1:] == [7_575_758, 1, 192_300_000]
    with pytest.raises(UnitError, match=r"bad\.npz: row 2: size 192\.30000000000004 is not an exact size"):
        load(spec_for(tmp_path / "bad.npz"))


def test_load_rejects_exch_ts_going_backwards(tmp_path):
    data = rows((BOTH | TRADE_EVENT | BUY_EVENT, 5, 0.5, 1.0), (BOTH | TRADE_EVENT | BUY_EVENT, 4, 0.5, 1.0))
    np.savez(tmp_path / "f.npz", data=data)

    with pytest.raises(ValueError, match="row 1: exch_ts goes backwards"):
        load(spec_for(tmp_path / "f.npz"))


def test_load_rejects_a_wrong_dtype(tmp_path):
    bad = np.zeros(3, dtype=[("ev", "u8"), ("exch_ts", "i8"), ("px", "f8")])
    np.savez(tmp_path / "f.npz", data=bad)

    with pytest.raises(ValueError, match="wrong dtype, expected fields"):
        load(spec_for(tmp_path / "f.npz"))


def test_load_rejects_the_old_six_column_format_with_a_hint(tmp_path):
    np.savez(tmp_path / "f.npz", data=np.zeros((4, 6)))

    with pytest.raises(ValueError, match=r"pre-2\.0 6-column format"):
        load(spec_for(tmp_path / "f.npz"))


def test_load_names_the_missing_key(tmp_path):
    np.savez(tmp_path / "f.npz", events=rows((BOTH | TRADE_EVENT | BUY_EVENT, 5, 0.5, 1.0)))

    with pytest.raises(ValueError, match=r"no array 'data' in the \.npz \(it has \['events'\]\)"):
        load(spec_for(tmp_path / "f.npz"))


def test_load_rejects_a_file_without_exchange_rows(tmp_path):
    np.savez(tmp_path / "f.npz", data=rows((LOCAL_EVENT | TRADE_EVENT | BUY_EVENT, 5, 0.5, 1.0)))

    with pytest.raises(ValueError, match="no EXCH_EVENT rows"):
        load(spec_for(tmp_path / "f.npz"))


def test_load_rejects_a_file_that_is_not_numpy(tmp_path):
    (tmp_path / "f.npz").write_text("hello")

    with pytest.raises(ValueError, match="cannot read"):
        load(spec_for(tmp_path / "f.npz"))


def test_write_npz_rejects_a_tick_the_tape_does_not_fit(tmp_path):
    tape = MarketTape(INFO)
    tape.level(1, Side.BUY, 4750, SHARE)

    with pytest.raises(ValueError, match=r"off the 0\.01 tick grid"):
        write_npz(tmp_path / "f.npz", tape, 0.01)
    with pytest.raises(ValueError, match="not a Polymarket tick"):
        write_npz(tmp_path / "f.npz", tape, 0.02)


def test_level_ops_are_the_yes_book():
    assert (OP_BID, OP_ASK) == (0, 1)


@pytest.mark.parametrize(("tick_size", "tick_px"), [(0.005, 50), (0.0025, 25)])
def test_the_half_and_quarter_cent_ticks_load_and_refuse_prices_off_them(tmp_path, tick_size, tick_px):
    # Markets on a 0.005 or 0.0025 grid exist; their files must load on that grid, not a finer one.
    on_grid = 0.4975 if tick_px == 25 else 0.495
    good = rows(
        (BOTH | DEPTH_EVENT | BUY_EVENT, 1, on_grid, 3.0),
        (BOTH | DEPTH_EVENT | SELL_EVENT, 2, 0.505, 4.0),
    )
    np.savez(tmp_path / "good.npz", data=good)
    info = msgspec.structs.replace(INFO, tick_px=tick_px)

    (tape,) = load(spec_for(tmp_path / "good.npz", info))

    assert tape.info.tick_px == tick_px
    assert list(tape.px)[1:] == [round(on_grid * PX_ONE), 5050]
    off = rows((BOTH | DEPTH_EVENT | BUY_EVENT, 1, on_grid + 0.001, 3.0))
    np.savez(tmp_path / "off.npz", data=off)
    with pytest.raises(ValueError, match=rf"row 0: price .* is not on the {tick_size:g} tick grid"):
        load(spec_for(tmp_path / "off.npz", info))


def test_config_tick_is_exactly_a_venue_tick():
    for tick in TICKS_PX:
        assert msgspec.convert({"path": "a.npz", "tick_px": tick}, HbtNpzSource).tick_px == tick
    for bad in (0, 2, 5, 20, 500, 10_000):
        with pytest.raises(msgspec.ValidationError, match="tick_px"):
            msgspec.convert({"path": "a.npz", "tick_px": bad}, HbtNpzSource)


def test_each_epoch_is_checked_against_its_own_tick(tmp_path):
    # After a tick change to 0.0025, 0.4975 is a price; at 0.01 before it, it was not.
    tick_row = rows((BOTH | TICK_SIZE_EVENT, 2, 0.0025, 0.0))
    level = rows((BOTH | DEPTH_EVENT | BUY_EVENT, 3, 0.4975, 1.0))
    np.savez(tmp_path / "a.npz", data=np.concatenate([tick_row, level]))
    level_before = rows((BOTH | DEPTH_EVENT | BUY_EVENT, 1, 0.4975, 1.0))
    np.savez(tmp_path / "b.npz", data=np.concatenate([level_before, tick_row]))

    (tape,) = load(spec_for(tmp_path / "a.npz"))

    assert list(tape.px)[-1] == 4975
    assert [e.tick_px for e in tape.specials.values() if isinstance(e, TickSizeChanged)] == [25]
    with pytest.raises(ValueError, match=r"row 0: price 0\.4975 is not on the 0\.01 tick grid"):
        load(spec_for(tmp_path / "b.npz"))


def test_a_no_snapshot_is_written_as_the_yes_book_it_mirrors(tmp_path):
    tape = MarketTape(INFO)
    no_book = BookSnapshot(
        market="m", outcome=Outcome.NO, ts_ns=5, bids=((5_300, SHARE),), asks=((5_500, 2 * SHARE),)
    )
    tape.special(no_book)
    write_npz(tmp_path / "a.npz", tape, 0.01)

    (back,) = load(spec_for(tmp_path / "a.npz"))

    snap = back.specials[0]
    assert isinstance(snap, BookSnapshot) and snap.outcome is Outcome.YES
    assert (snap.bids, snap.asks) == (((4_500, 2 * SHARE),), ((4_700, SHARE),))
