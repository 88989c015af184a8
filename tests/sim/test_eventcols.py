"""The columnar event log: its JSON lines are ``BufferSink``'s, byte for byte, and its digest is stable."""

from __future__ import annotations

import tempfile
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sim.eventcols
from core.eventlog import BufferSink, RowSink, record_plan, units_record
from core.messages import Canceled, Filled, Place, Rejected
from core.quoting import Decision, DesiredOrder, Quote, Reasons
from core.units import Outcome, Side
from sim.eventcols import COLUMNS_NAME, ColumnLog, ColumnReader
from sim.rewards import RewardSample

MARKETS = st.sampled_from(["m-a", "m-b", ""])
INTS = st.integers(min_value=-(2**62), max_value=2**62)
TEXT = st.text(max_size=8)
SIDES = st.sampled_from([Side.BUY, Side.SELL])
OUTCOMES = st.sampled_from([Outcome.YES, Outcome.NO])


def _place(m: str, ts: int, d: st.DrawFn) -> tuple[str, object]:
    return "place", Place(
        market=m,
        client_id=d(TEXT),
        outcome=d(OUTCOMES),
        side=d(SIDES),
        px=d(st.integers(1, 9_999)),
        qty=d(INTS),
        post_only=d(st.booleans()),
        tif=d(st.sampled_from(["GTC", "GTD"])),
        expire_ns=d(INTS),
    )


def _fill(m: str, ts: int, d: st.DrawFn) -> tuple[str, object]:
    return "fill", Filled(
        market=m,
        client_id=d(TEXT),
        ts_ns=ts,
        outcome=d(OUTCOMES),
        side=d(SIDES),
        px=d(st.integers(1, 9_999)),
        qty=d(INTS),
        fee_usdc6=d(INTS),
        liquidity=d(st.sampled_from(["maker", "taker"])),
        trade_id=d(TEXT),
        leaves_qty=d(INTS),
    )


def _decision(m: str, ts: int, d: st.DrawFn) -> tuple[str, object]:
    q = st.builds(Quote, st.integers(1, 9_999), INTS)
    o = st.builds(DesiredOrder, OUTCOMES, SIDES, st.integers(1, 9_999), INTS)
    return "decision", Decision(
        quote=d(st.booleans()),
        no_quote=d(st.sampled_from(["", "stale_book"])),
        fair_px=d(INTS),
        bids=tuple(d(st.lists(q, max_size=3))),
        orders=tuple(d(st.lists(o, max_size=3))),
        reasons=Reasons(fair_source=d(TEXT), inventory_qty=d(INTS)),
    )


def _other(m: str, ts: int, d: st.DrawFn) -> tuple[str, object]:
    kind = d(st.sampled_from(["canceled", "rejected", "reward", "settlement", "risk", "placed_as_other"]))
    if kind == "canceled":
        return kind, Canceled(market=m, client_id=d(TEXT), ts_ns=ts, reason=d(TEXT))
    if kind == "rejected":
        return kind, Rejected(market=m, client_id=d(TEXT), ts_ns=ts, reason=d(TEXT))
    if kind == "reward":
        return kind, RewardSample(
            score_qty=d(INTS), score_total_qty=d(INTS), accrued_usdc6=d(INTS), scoring=d(st.booleans())
        )
    if kind == "placed_as_other":  # a message logged under another kind than its tag: kept as its line
        return kind, Place(market=m, client_id="x", outcome=Outcome.YES, side=Side.BUY, px=1, qty=1)
    payload = d(
        st.dictionaries(
            st.sampled_from(["state", "reason", "market", "n", "x"]),
            INTS | TEXT | st.floats(allow_nan=False),
            max_size=4,
        )
    )
    return kind, payload


@st.composite
def rows(draw: st.DrawFn) -> list[tuple[str, int, str, object]]:
    out = []
    for _ in range(draw(st.integers(0, 40))):
        m, ts = draw(MARKETS), draw(st.integers(0, 2**62))
        kind, payload = draw(st.sampled_from([_place, _fill, _decision, _other]))(m, ts, draw)
        out.append((kind, ts, m, payload))
    return out


@settings(max_examples=60, deadline=None)
@given(rows(), st.integers(1, 7), st.integers(1, 5))
def test_the_columns_print_the_lines_buffer_sink_writes(records, chunk, batch):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sim.eventcols, "CHUNK_ROWS", chunk)  # chunks of any size read back alike
        mp.setattr(sim.eventcols, "BATCH_ROWS", batch)  # ...and batches: most columns are in the spool
        ref = BufferSink()
        log, other = ColumnLog(), ColumnLog()
        log.units = other.units = units_record(7)
        sink, sink2 = RowSink(), RowSink()
        for k in range(0, len(records), 3):  # handed over in pieces, as per window
            for row in records[k : k + 3]:
                ref.record(*row)
                sink.record(*row)
                sink2.record(*row)
            log.add(sink)
            other.add(sink2)
            other.digest()  # reading a log mid-run changes nothing in it
        reader = ColumnReader.of(log)
        assert log.digest() == other.digest()
        assert reader.all_lines() == [units_record(7), *ref.lines]
        assert len(log) == len(ref.lines)
        for kind in ("fill", "decision", "nothing"):
            assert list(reader.lines([kind])) == [
                x for x in ref.lines if x.startswith(b'{"kind":"%s"' % kind.encode())
            ]
        with tempfile.TemporaryDirectory() as tmp:  # saved (streamed from the spool) and read back alike
            path = Path(tmp) / COLUMNS_NAME
            assert log.save(path) == log.digest()
            saved = ColumnReader.open(path)
            assert saved.recompute_digest() == saved.digest == log.digest()
            assert saved.all_lines() == [units_record(7), *ref.lines]


def test_the_digest_follows_the_content_and_nothing_else(tmp_path):
    def log_of(px: int) -> ColumnLog:
        log, sink = ColumnLog(), RowSink()
        log.units = units_record(1)
        place = Place(market="m", client_id="c", outcome=Outcome.YES, side=Side.BUY, px=px, qty=1)
        sink.record("place", 5, "m", place)
        log.add(sink)
        sink.record("settlement", 6, "m", {"yes_won": True})
        log.add(sink)
        return log

    a, b, c = log_of(100), log_of(100), log_of(101)
    assert a.digest() == b.digest() != c.digest()
    digest = a.save(tmp_path / COLUMNS_NAME)
    reader = ColumnReader.open(tmp_path / COLUMNS_NAME)
    assert digest == a.digest() == reader.digest == reader.recompute_digest()
    assert msgspec.json.decode(reader.units_line())["kind"] == "units"


def _mixed(m: str, ts: int, d: st.DrawFn) -> tuple[str, object]:
    # A few kinds, each logged with payloads of several types in any order (the sink keeps the shape
    # of each kind's last record: a type change under a kind must find, or make, the other shape).
    kind = d(st.sampled_from(["a", "b", "fill"]))
    payload = d(
        st.sampled_from(
            [
                Canceled(market=m, client_id="c", ts_ns=ts, reason="r"),
                RewardSample(score_qty=1, score_total_qty=2, accrued_usdc6=3, scoring=True),
                {"n": ts},
            ]
        )
    )
    return kind, payload


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(MARKETS, st.integers(0, 2**62), st.data()), max_size=30), st.integers(0, 30))
def test_a_row_sink_keeps_the_rows_a_naive_sink_keeps(draws, cut):
    # The reference: a shape per (kind, payload type) in first-seen order, found by a list search.
    records = []
    for m, ts, data in draws:
        kind, payload = data.draw(st.sampled_from([_mixed, _place, _fill, _other]))(m, ts, data.draw)
        records.append((kind, ts, m, payload))
    sink = RowSink()
    keys: list[tuple[str, type]] = []
    order: list[int] = []
    rows: list[list[tuple[int, str, object]]] = []
    for k, (kind, ts, m, payload) in enumerate(records):
        if k == cut:  # forgetting the rows kept keeps the shapes
            sink.clear()
            order.clear()
            for r in rows:
                r.clear()
        key = (kind, type(payload))
        if key not in keys:
            keys.append(key)
            rows.append([])
        i = keys.index(key)
        order.append(i)
        line = record_plan(kind, type(payload))[0] == "line"
        rows[i].append((ts, m, payload if line else msgspec.structs.astuple(payload)))
        sink.record(kind, ts, m, payload)
    assert [(r.kind, r.cls) for r in sink.shapes] == keys
    assert [r.idx for r in sink.shapes] == list(range(len(keys)))
    assert sink.order == order
    assert [list(zip(r.ts, r.market, r.values, strict=True)) for r in sink.shapes] == rows
