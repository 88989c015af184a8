"""The market cache / selected_markets.json: versioned schema, round trip, atomic writes, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from adapters.gamma import parse_market
from adapters.market_cache import (
    SCHEMA_VERSION,
    CacheEntry,
    MarketCacheError,
    atomic_write_bytes,
    load_market_cache,
    load_selected_markets,
    read_markets_file,
    write_markets_file,
)
from tests.gamma_server import fixture_markets


def entries() -> list[CacheEntry]:
    return [CacheEntry(market=parse_market(raw), raw=raw) for raw in fixture_markets()[:4]]


def test_cache_round_trip_keeps_records_and_raw(tmp_path: Path) -> None:
    path = tmp_path / "state" / "markets.json"
    written = entries()

    write_markets_file(path, kind="market_cache", entries=written, generated_at="2026-11-24T00:00:00Z")
    doc = load_market_cache(path)

    assert doc.schema_version == SCHEMA_VERSION
    assert doc.kind == "market_cache"
    assert doc.records() == [e.market for e in written]
    assert [e.raw for e in doc.markets] == [e.raw for e in written]


def test_cache_file_is_readable_json_with_raw_gamma_fields(tmp_path: Path) -> None:
    path = tmp_path / "selected.json"

    write_markets_file(
        path, kind="selected_markets", strategy="market_maker", entries=entries()[:1], generated_at="t"
    )
    data = json.loads(path.read_text())

    assert data["schema_version"] == 3
    assert data["strategy"] == "market_maker"
    assert data["markets"][0]["market"]["token_ids"][0] == data["markets"][0]["market"]["token_ids"][0]
    assert isinstance(data["markets"][0]["raw"]["clobTokenIds"], str)  # as Gamma serves it


def test_load_selected_markets_gives_records_that_reduce_to_market_info(tmp_path: Path) -> None:
    path = tmp_path / "selected.json"
    write_markets_file(path, kind="selected_markets", entries=entries(), generated_at="t")

    records = load_selected_markets(path)

    assert [r.market_id for r in records] == [e.market.market_id for e in entries()]
    assert records[0].to_info().yes_token == records[0].token_ids[0]


def test_atomic_write_replaces_whole_file_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    atomic_write_bytes(path, b"old")

    atomic_write_bytes(path, b"new")

    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "markets.json"
    write_markets_file(path, kind="market_cache", entries=entries(), generated_at="t")
    before = path.read_bytes()
    bad = CacheEntry(market=entries()[0].market, raw={"x": object()})

    with pytest.raises(TypeError):
        write_markets_file(path, kind="market_cache", entries=[bad], generated_at="t")

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["markets.json"]


def test_read_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(MarketCacheError, match=r"nope\.json: no such file"):
        read_markets_file(tmp_path / "nope.json")


def test_read_other_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "markets.json"
    path.write_bytes(msgspec.json.encode({"schema_version": 99, "kind": "market_cache", "markets": []}))

    with pytest.raises(MarketCacheError, match="schema_version 99 is not supported"):
        read_markets_file(path)


def test_a_version_1_file_with_sizes_in_cents_is_refused(tmp_path: Path) -> None:
    # Version 1 stored min_qty in 0.01 shares (500 = 5 shares); read now it would mean 0.0005 shares.
    path = tmp_path / "markets.json"
    path.write_bytes(msgspec.json.encode({"schema_version": 1, "kind": "market_cache", "markets": []}))

    with pytest.raises(MarketCacheError, match=r"schema_version 1 is not supported.*refresh-markets"):
        read_markets_file(path)


def test_a_version_2_file_without_protocol_versions_is_refused(tmp_path: Path) -> None:
    # Version 2 kept clobTokenIds whatever the market's protocol: a Protocol V2 market would be traded
    # by the wrong ids.
    path = tmp_path / "markets.json"
    path.write_bytes(msgspec.json.encode({"schema_version": 2, "kind": "market_cache", "markets": []}))

    with pytest.raises(
        MarketCacheError, match=r"schema_version 2 is not supported \(expected 3\).*refresh-markets"
    ):
        read_markets_file(path)


def test_a_record_with_an_unknown_protocol_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "markets.json"
    write_markets_file(path, kind="market_cache", entries=entries()[:1], generated_at="t")
    path.write_text(path.read_text().replace('"version": "v1"', '"version": "v9"'))

    with pytest.raises(MarketCacheError, match="v9"):
        read_markets_file(path)


def test_read_garbage_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "markets.json"
    path.write_text("{not json")

    with pytest.raises(MarketCacheError) as err:
        read_markets_file(path)

    assert "not a polymm markets file" in str(err.value)
    assert "\n" not in str(err.value)


def test_read_wrong_shape_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "markets.json"
    path.write_text(
        json.dumps({"schema_version": 3, "kind": "market_cache", "generated_at": "t", "markets": [1]})
    )

    with pytest.raises(MarketCacheError, match=r"markets\[0\]"):
        read_markets_file(path)
