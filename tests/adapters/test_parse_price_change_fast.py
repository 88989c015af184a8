"""A frame that ends with the ``price_change`` tag decodes as that one type: the same as the union decoder.

``parse.decode_market_messages`` skips the tagged union's lookahead for such frames (the tag is the
frame's last member, as the venue sends it); anything the one-type decoder refuses goes the general
way. These tests hold the two paths to the same messages and the same skip reasons.
"""

import json
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.polymarket import parse
from adapters.polymarket.schemas import WirePriceChange

FIXTURE = (
    Path(__file__).resolve().parent.parent / "fixtures/polymarket/stream_book_price_change_burst_2026-09.json"
)


def general(data):
    """What the union decoder alone gives (the fast path switched off)."""
    tails = parse._PRICE_CHANGE_TAILS, parse._PRICE_CHANGE_TAILS_B
    # (two of each: a compiled parse checks the global against its declared type, tuple[str, str])
    parse._PRICE_CHANGE_TAILS, parse._PRICE_CHANGE_TAILS_B = ("\0", "\0"), (b"\0", b"\0")
    try:
        return parse.decode_market_messages(data)
    finally:
        parse._PRICE_CHANGE_TAILS, parse._PRICE_CHANGE_TAILS_B = tails


def recorded_price_changes():
    return [m for m in json.loads(FIXTURE.read_text()) if m.get("event_type") == "price_change"]


def test_recorded_price_changes_take_the_fast_path_and_decode_as_the_union_does(monkeypatch):
    used = []
    real = parse.PRICE_CHANGE_DECODER

    class Spy:
        def decode(self, data):
            used.append(data)
            return real.decode(data)

    monkeypatch.setattr(parse, "PRICE_CHANGE_DECODER", Spy())
    msgs = recorded_price_changes()
    assert msgs
    for m in msgs:
        for data in (msgspec.json.encode(m), json.dumps(m), json.dumps(m, indent=2).encode()):
            got = parse.decode_market_messages(data)
            assert got == general(data)
            assert type(got[0][0]) is WirePriceChange and got[1] == []
    assert len(used) == 2 * len(msgs)  # compact and spaced; indented frames end in a newline


@pytest.mark.parametrize(
    "data",
    [
        # the tag twice, another first: the one-type decoder refuses, the union decides
        b'{"event_type":"book","asset_id":"1","event_type":"price_change"}',
        # a bad field before the tag
        b'{"market":"m","timestamp":[1],"event_type":"price_change"}',
        b'{"market":"m","price_changes":[{"asset_id":"1"}],"event_type":"price_change"}',
        # not JSON, or not an object, that still ends with the tag
        b'"event_type":"price_change"}',
        b'{"market":"m",,"event_type":"price_change"}',
        '{"market":"m","event_type":"price_change"}',
        b'[{"market":"m","event_type":"price_change"}]',
    ],
)
def test_frames_the_fast_path_refuses_or_takes_match_the_general_path(data):
    assert parse.decode_market_messages(data) == general(data)


_value = st.one_of(
    st.none(),
    st.integers(-5, 10**20),
    st.text(alphabet="0123456789.-eabc", max_size=8),
    st.lists(st.integers(0, 3), max_size=2),
)
_entry = st.dictionaries(
    st.sampled_from(["asset_id", "price", "size", "side", "hash", "best_bid"]), _value, max_size=6
)
_member = st.one_of(
    st.tuples(st.sampled_from(["market", "timestamp", "asset_id", "price", "side", "size", "hash"]), _value),
    st.tuples(st.just("price_changes"), st.one_of(st.lists(_entry, max_size=3), _value)),
    st.tuples(st.just("event_type"), st.sampled_from(["price_change", "book", "best_bid_ask", "x"])),
)


@given(
    members=st.lists(_member, max_size=6), tag_last=st.booleans(), spaced=st.booleans(), cut=st.integers(0, 3)
)
def test_any_frame_decodes_as_the_general_path_decodes_it(members, tag_last, spaced, cut):
    # Members in any order (duplicates too), the tag last or not, compact or spaced, maybe cut short.
    if tag_last:
        members = [*members, ("event_type", "price_change")]
    sep = ": " if spaced else ":"
    text = "{" + ",".join(json.dumps(k) + sep + json.dumps(v) for k, v in members) + "}"
    if cut:
        text = text[: max(0, len(text) - 40 * cut)] + '"event_type":"price_change"}'
    for data in (text, text.encode()):
        assert parse.decode_market_messages(data) == general(data)
