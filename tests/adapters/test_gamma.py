"""Gamma client against a loopback Gamma serving real payloads; parsing of every fixture market."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.gamma import (
    FetchResult,
    GammaClient,
    GammaError,
    GammaHTTPError,
    GammaUnavailable,
    MalformedMarket,
    market_query,
    parse_market,
    should_retry,
)
from adapters.market_cache import CacheEntry, load_selected_markets, write_markets_file
from core.config import MarketSelection
from core.units import QTY_ONE
from tests.gamma_server import FIXTURES, GammaServer, fixture_markets, malformed_markets

NOW = 1_773_306_000 * 1_000_000_000  # 2026-03-12T09:00:00Z


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def server() -> Iterator[GammaServer]:
    with GammaServer() as s:
        yield s


def client(url: str, **kw: Any) -> GammaClient:
    sleeps: list[float] = []
    c = GammaClient(url, backoff_s=0.01, timeout_s=5.0, sleep=sleeps.append, **kw)
    c.sleeps = sleeps  # type: ignore[attr-defined]
    return c


ALL = {"limit": "1000"}  # no filters: every fixture market


def fetch_all(c: GammaClient, limit: int = 1_000, **params: str) -> FetchResult:
    return c.fetch_markets(params, limit=limit)


# --- parsing --------------------------------------------------------------------------------------------


def test_parse_market_politics_negrisk_fields() -> None:
    raw = load("market_politics_negrisk_live_2026-06.json")
    event = load("events_democratic_nominee_2028.json")[0]

    m = parse_market(raw, event)

    assert m.market_id == "559652"
    assert m.condition_id == "0x0f49db97f71c68b1e42a6d16e3de93d85dbf7d4148e3f018eb79e88554be9f75"
    assert m.outcomes == ("Yes", "No")
    assert m.yes_token.startswith("545330438199465925")
    assert m.no_token.startswith("878541741480746520")
    assert (m.tick_px, m.min_qty) == (10, 5 * QTY_ONE)
    assert (m.best_bid_px, m.best_ask_px, m.spread_px(), m.mid_px2()) == (2_320, 2_330, 10, 4_650)
    assert m.neg_risk is True
    assert m.neg_risk_market_id.startswith("0x2c3d7e0e")
    assert m.end_date == "2028-11-07T00:00:00Z"
    assert m.end_ns == 1_857_168_000 * 1_000_000_000
    assert m.volume_24h == pytest.approx(9066.547418)
    assert m.liquidity == pytest.approx(230438.22824)
    assert (m.fee_rate_ppm, m.fee_exponent, m.maker_rebate_ppm, m.fee_type) == (
        40_000,
        1,
        250_000,
        "politics_fees",
    )
    assert m.rewards_daily_usdc == pytest.approx(0.001)
    assert (m.rewards_min_qty, m.rewards_max_spread_px) == (0, 0)
    assert m.event_id == "30829"
    assert "politics" in m.tags
    assert "US Election" in m.tag_labels
    assert (m.active, m.closed, m.accepting_orders, m.enable_order_book) == (True, False, True, True)


NEGRISK_EVENT = "0x2c3d7e0eee6f058be3006baabf0d54a07da254ba47fe6e3e095e7990c7814700"


def test_negrisk_event_and_rebate_of_the_real_market_reach_market_info() -> None:
    # feeSchedule {"rate": 0.04, "rebateRate": 0.25} and negRiskMarketID, as Gamma served them.
    raw = load("market_politics_negrisk_live_2026-06.json")

    info = parse_market(raw).to_info()

    assert (info.neg_risk, info.neg_risk_market_id) == (True, NEGRISK_EVENT)
    assert (info.fee_rate_ppm, info.rebate_ppm) == (40_000, 250_000)
    assert (info.market, info.tick_px) == (raw["conditionId"], 10)


def test_negrisk_event_and_rebate_survive_fetch_and_the_selection_file(
    server: GammaServer, tmp_path: Path
) -> None:
    with client(server.url) as c:
        result = fetch_all(c)
    (entry,) = [
        CacheEntry(market=rec, raw=raw)
        for rec, raw in zip(result.records, result.raw, strict=True)
        if rec.market_id == "559652"
    ]
    path = tmp_path / "selected.json"
    write_markets_file(path, kind="selected_markets", entries=[entry], generated_at="t")

    (info,) = [r.to_info() for r in load_selected_markets(path)]

    assert (info.neg_risk_market_id, info.fee_rate_ppm, info.rebate_ppm) == (NEGRISK_EVENT, 40_000, 250_000)


def test_parse_market_rewards_in_cents_and_shares() -> None:
    m = parse_market(load("market_btc_updown_5m_2026-03.json"))

    assert m.rewards_max_spread_px == 450  # 4.5 cents
    assert m.rewards_min_qty == 50 * QTY_ONE
    assert m.outcomes == ("Up", "Down")
    assert m.fee_type == "crypto_fees"


def test_parse_market_price_changes_in_px_signed() -> None:
    m = parse_market(load("market_closed_binary_accepting_true_2026.json"))
    assert (m.change_1h_px, m.change_1d_px, m.change_1w_px) == (100, 1_350, 1_550)  # 0.01, 0.135, 0.155
    page = load("markets_list_derived_btc5m_2026-07-24_first10.json")
    assert parse_market(page[2]).change_1h_px == -5_045  # -0.5045
    newsom = parse_market(load("market_politics_negrisk_live_2026-06.json"))  # 1h and 1d not served
    assert (newsom.change_1h_px, newsom.change_1d_px, newsom.change_1w_px) == (None, None, -190)


@pytest.mark.parametrize(
    ("value", "expected"), [(0.00004, 0), (0.00016, 2), ("-0.25", -2_500), ("", None), (-1, -10_000)]
)
def test_a_price_change_finer_than_the_grid_is_rounded(value: Any, expected: int | None) -> None:
    raw = {**load("market_btc_updown_5m_2026-03.json"), "oneDayPriceChange": value}
    assert parse_market(raw).change_1d_px == expected


@pytest.mark.parametrize(("value", "message"), [(1.5, "not a price change"), ("up", "not a number")])
def test_a_price_change_that_is_no_price_change_is_malformed(value: Any, message: str) -> None:
    raw = {**load("market_btc_updown_5m_2026-03.json"), "oneHourPriceChange": value}
    with pytest.raises(MalformedMarket, match=f"oneHourPriceChange: .*{message}"):
        parse_market(raw)


def test_parse_market_closed_but_accepting_keeps_both_flags() -> None:
    m = parse_market(load("market_closed_binary_accepting_true_2026.json"))

    assert (m.closed, m.accepting_orders) == (True, True)
    assert m.rewards_daily_usdc == 30.0


@pytest.mark.parametrize(("tick", "tick_px"), [(0.1, 1000), (0.005, 50), ("0.0025", 25), (0.0001, 1)])
def test_parse_market_takes_every_venue_tick(tick: float | str, tick_px: int) -> None:
    raw = {**load("market_btc_updown_5m_2026-03.json"), "orderPriceMinTickSize": tick}

    assert parse_market(raw).tick_px == tick_px


@pytest.mark.parametrize("tick", [0.0003, "0.02", 0])
def test_parse_market_refuses_a_tick_the_venue_does_not_use(tick: float | str) -> None:
    raw = {**load("market_btc_updown_5m_2026-03.json"), "orderPriceMinTickSize": tick}

    with pytest.raises(MalformedMarket, match="orderPriceMinTickSize"):
        parse_market(raw)


def test_parse_market_six_decimal_sizes_are_exact() -> None:
    raw = {
        **load("market_btc_updown_5m_2026-03.json"),
        "orderMinSize": "7.575758",
        "rewardsMinSize": 45.123456,
    }

    m = parse_market(raw)

    assert (m.min_qty, m.rewards_min_qty) == (7_575_758, 45_123_456)


def test_parse_market_legacy_without_tick_parses_with_none() -> None:
    m = parse_market(load("market_closed_nonbinary_legacy_2020.json"))

    assert m.tick_px is None
    assert m.gamma_category == "Crypto"
    assert m.enable_order_book is False


def test_parse_market_every_fixture_market_parses() -> None:
    parsed = [parse_market(obj) for obj in fixture_markets()]

    assert len(parsed) == 22
    assert all(len(m.token_ids) == 2 for m in parsed)


# --- protocol version (venue-2026-12.md §1) -------------------------------------------------------------

V1_IDS = ["71321045679252212594626385532706912750332728571942532289631379312455583992563", "1234567890123"]
V2_IDS = [str(int("01" + "c3" * 16 + "00" * 14 + outcome, 16)) for outcome in ("00", "01")]


def btc(**fields: Any) -> dict[str, Any]:
    return {**load("market_btc_updown_5m_2026-03.json"), **fields}


def test_a_v2_market_trades_by_its_position_ids_even_when_clob_token_ids_are_served() -> None:
    m = parse_market(btc(version="v2", positionIds=V2_IDS, clobTokenIds=json.dumps(V1_IDS)))

    assert (m.version, m.token_ids) == ("v2", tuple(V2_IDS))
    info = m.to_info()
    assert (info.version, info.yes_token, info.no_token) == ("v2", V2_IDS[0], V2_IDS[1])


def test_a_v1_market_trades_by_its_clob_token_ids_even_when_position_ids_are_served() -> None:
    m = parse_market(btc(version="v1", positionIds=V2_IDS, clobTokenIds=json.dumps(V1_IDS)))

    assert (m.version, m.token_ids, m.to_info().version) == ("v1", tuple(V1_IDS), "v1")


def test_position_ids_as_a_json_encoded_string_are_read_too() -> None:
    assert parse_market(btc(version="v2", positionIds=json.dumps(V2_IDS))).token_ids == tuple(V2_IDS)


def test_a_market_listed_before_protocol_v2_has_no_version_and_is_v1() -> None:
    m = parse_market(load("market_btc_updown_5m_2026-03.json"))  # recorded 2026-03: no version field

    assert m.version == "v1" and len(m.token_ids) == 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"version": "v3"}, r"version: 'v3' is not a protocol polymm trades"),
        ({"version": 2}, r"version: 2 is not a protocol polymm trades"),
        ({"positionIds": V2_IDS}, r"version: missing, and positionIds are served"),
        ({"version": "v2", "positionIds": [V2_IDS[0]], "outcomes": '["Up", "Down"]'}, r"positionIds: 1 ids"),
    ],
    ids=["unknown", "not-a-string", "missing-with-position-ids", "one-position-id"],
)
def test_an_unknown_or_ambiguous_version_is_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedMarket, match=message):
        parse_market(btc(**fields))


def test_a_v2_market_without_position_ids_cannot_trade() -> None:
    m = parse_market({k: v for k, v in btc(version="v2").items() if k != "clobTokenIds"})

    assert m.token_ids == ()
    with pytest.raises(ValueError, match="needs two tokens"):
        m.to_info()


def test_the_version_and_position_ids_survive_the_selection_file(tmp_path: Path) -> None:
    raw = btc(version="v2", positionIds=V2_IDS)
    path = tmp_path / "selected.json"
    write_markets_file(
        path,
        kind="selected_markets",
        entries=[CacheEntry(market=parse_market(raw), raw=raw)],
        generated_at="t",
    )

    (record,) = load_selected_markets(path)

    assert (record.version, record.to_info().yes_token) == ("v2", V2_IDS[0])


@pytest.mark.parametrize(
    ("index", "field"),
    [
        (1, "conditionId"),
        (2, "clobTokenIds"),
        (3, "bestBid"),
        (4, "orderPriceMinTickSize"),
        (5, "active"),
        (6, "clobTokenIds"),
        (7, "volume24hr"),
    ],
)
def test_parse_market_malformed_names_the_field(index: int, field: str) -> None:
    with pytest.raises(MalformedMarket, match=field):
        parse_market(malformed_markets()[index])


def test_market_query_pushes_filters_gamma_supports() -> None:
    sel = MarketSelection(min_liquidity=1_000, min_hours_to_end=24, order_by="liquidity", ascending=True)

    q = market_query(sel, now_ns=NOW)
    cache_q = market_query(sel, now_ns=NOW, strategy_filters=False)

    assert q == {
        "active": "true",
        "closed": "false",
        "archived": "false",
        "order": "liquidity",
        "ascending": "true",
        "end_date_min": "2026-03-13T09:00:00Z",
        "liquidity_num_min": "1000",
    }
    assert cache_q["end_date_min"] == "2026-03-12T09:00:00Z"
    assert "liquidity_num_min" not in cache_q


def test_should_retry_on_429_5xx_and_no_response() -> None:
    assert [should_retry(s) for s in (None, 429, 500, 503, 400, 404, 422)] == [
        True,
        True,
        True,
        True,
        False,
        False,
        False,
    ]


# --- the client against the loopback server -------------------------------------------------------------


def test_fetch_pages_until_short_page(server: GammaServer) -> None:
    with client(server.url, page_size=5) as c:
        result = fetch_all(c)

    offsets = [q["offset"][0] for q in server.paths("/markets")]
    assert offsets == ["0", "5", "10", "15", "20"]  # 22 markets: the fifth page has 2
    assert [q["limit"][0] for q in server.paths("/markets")] == ["5"] * 5
    assert len(result.records) == 22
    assert result.pages == 5


def test_fetch_stops_on_422_past_the_end(server: GammaServer) -> None:
    server.markets = server.markets[:20]

    with client(server.url, page_size=5) as c:
        result = fetch_all(c)

    assert [q["offset"][0] for q in server.paths("/markets")] == ["0", "5", "10", "15", "20"]
    assert len(result.records) == 20
    assert result.pages == 4


def test_fetch_stops_at_limit_with_a_partial_last_page(server: GammaServer) -> None:
    with client(server.url, page_size=5) as c:
        result = fetch_all(c, limit=7)

    assert [(q["offset"][0], q["limit"][0]) for q in server.paths("/markets")] == [("0", "5"), ("5", "2")]
    assert len(result.records) == 7


def test_fetch_never_asks_for_more_than_100_per_page(server: GammaServer) -> None:
    with client(server.url) as c:
        fetch_all(c, limit=250)

    assert server.paths("/markets")[0]["limit"] == ["100"]


def test_fetch_orders_by_volume_descending_with_filters(server: GammaServer) -> None:
    with client(server.url) as c:
        result = c.fetch_markets(market_query(MarketSelection(), now_ns=NOW), limit=50)

    volumes = [m.volume_24h for m in result.records]
    assert volumes == sorted(volumes, reverse=True)
    assert all(not m.closed and m.active for m in result.records)
    q = server.paths("/markets")[0]
    assert (q["order"], q["ascending"], q["closed"]) == (["volume24hr"], ["false"], ["false"])


def test_fetch_retries_429_then_succeeds(server: GammaServer) -> None:
    server.fail(429, times=1, retry_after="0")

    with client(server.url) as c:
        result = fetch_all(c)
        sleeps = c.sleeps  # type: ignore[attr-defined]

    assert len(result.records) == 22
    assert len(sleeps) == 1
    assert [p for p, _ in server.requests].count("/markets") == 2


def test_fetch_retries_500_with_exponential_backoff(server: GammaServer) -> None:
    server.fail(500, times=3)

    with client(server.url, retries=4) as c:
        result = fetch_all(c)
        sleeps = c.sleeps  # type: ignore[attr-defined]

    assert len(result.records) == 22
    assert sleeps == [0.01, 0.02, 0.04]


def test_fetch_gives_up_with_clear_error_when_gamma_stays_down(server: GammaServer) -> None:
    server.fail(500, times=10)

    with client(server.url, retries=2) as c, pytest.raises(GammaUnavailable) as err:
        fetch_all(c)

    msg = str(err.value)
    assert "unavailable" in msg
    assert "failed 3 times" in msg
    assert "HTTP 500" in msg
    assert "\n" not in msg


def test_fetch_non_retriable_status_raises_http_error(server: GammaServer) -> None:
    server.fail(404, times=1)

    with client(server.url) as c, pytest.raises(GammaHTTPError) as err:
        fetch_all(c)

    assert err.value.status == 404
    assert len(server.paths("/markets")) == 1


def test_fetch_connection_refused_is_unavailable() -> None:
    with socket.socket() as s:  # a free loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    with (
        client(f"http://127.0.0.1:{port}", retries=1) as c,
        pytest.raises(GammaUnavailable, match="ConnectError"),
    ):
        fetch_all(c)


def test_fetch_skips_malformed_records_with_logged_reason(
    server: GammaServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.markets = [*fixture_markets()[:3], *malformed_markets(), *fixture_markets()[3:5]]
    caplog.set_level(logging.WARNING, logger="adapters.gamma")

    with client(server.url, page_size=4) as c:
        result = fetch_all(c)

    assert len(result.records) == 5
    assert len(result.raw) == 5
    assert [s.market_id for s in result.skipped] == ["?", *(f"90000{i}" for i in range(1, 8))]
    assert result.skipped[0].reason == "not a JSON object but str"
    assert "conditionId" in result.skipped[1].reason
    assert sum("skipping Gamma market" in r.message for r in caplog.records) == 8


def test_fetch_non_array_page_is_a_clear_error() -> None:
    transport = httpx.MockTransport(lambda _req: httpx.Response(200, json={"error": "nope"}))

    with (
        GammaClient("http://gamma.test", transport=transport) as c,
        pytest.raises(GammaError, match="JSON array"),
    ):
        fetch_all(c)


def test_fetch_adds_event_tags_from_events_endpoint(server: GammaServer) -> None:
    with client(server.url) as c:
        result = fetch_all(c)

    by_id = {m.market_id: m for m in result.records}
    assert "politics" in by_id["559657"].tags  # nested in the 2028 nominee event
    assert "crypto" in by_id["1500056"].tags  # nested in the public-search Bitcoin event
    assert by_id["1557558"].tags == ()  # its event is not in the fixtures: no tags, no error
    assert {"246060", "260654", "30829"} <= set(server.paths("/events")[0]["id"])


def test_fetch_raw_objects_are_kept_unchanged(server: GammaServer) -> None:
    with client(server.url) as c:
        result = fetch_all(c)

    original = load("market_politics_negrisk_live_2026-06.json")
    assert original in list(result.raw)
    assert Path(FIXTURES / "PROVENANCE.md").exists()
