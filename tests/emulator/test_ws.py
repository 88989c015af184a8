"""The emulator's WebSocket channels, read with a plain ``websockets`` client and our own parsers."""

from __future__ import annotations

import json

import pytest
from py_clob_client_v2 import ClobClient
from py_clob_client_v2.clob_types import OrderArgsV2, OrderType
from websockets.sync.client import connect

from adapters.polymarket.clob_port import PolymarketVenue, connect_venue
from adapters.polymarket.parse import (
    AssetMap,
    VenueOrderUpdate,
    VenueTrade,
    decode_market_frame,
    decode_user_frame,
)
from adapters.polymarket.sdk import environment_for
from adapters.polymarket.secrets import Secret
from core.markets import MarketInfo
from core.messages import BookDelta, BookSnapshot, TickSizeChanged, TradePrint
from core.units import QTY_ONE, Outcome, Side
from core.yes_view import YesView
from emulator import Emulator, ManualClock
from emulator.scenario import FlowConfig, InitialBook, MarketConfig, Scenario
from emulator.venue import MarketSub, Venue
from tests.emulator.conftest import (
    BUSY,
    KEY_A,
    QUIET,
    control,
    events,
    ids,
    make_client,
    make_scenario,
    recv_until,
    status,
)
from tests.fakes import FakeClock


def _infos(emu: Emulator, *slugs: str) -> list[MarketInfo]:
    return [
        MarketInfo(market=m["market"], yes_token=m["yes_token"], no_token=m["no_token"])
        for s in slugs
        for m in [ids(emu, s)]
    ]


def _assets(emu: Emulator, *slugs: str) -> AssetMap:
    return AssetMap.from_markets(_infos(emu, *slugs))


def _subscribe_market(ws, *tokens: str) -> None:
    ws.send(json.dumps({"assets_ids": list(tokens), "type": "market", "custom_feature_enabled": False}))


def test_market_channel_gives_a_book_per_asset_then_price_changes(emu: Emulator, client: ClobClient):
    m = ids(emu, QUIET)
    assets = _assets(emu, QUIET)

    with connect(emu.ws_market_url) as ws:
        _subscribe_market(ws, m["yes_token"], m["no_token"])
        first = recv_until(ws, lambda fs: sum(e["event_type"] == "book" for e in events(fs)) >= 2)
        client.create_and_post_order(
            OrderArgsV2(token_id=m["yes_token"], price=0.49, size=10, side="BUY"),
            order_type=OrderType.GTC,
            post_only=True,
        )
        later = recv_until(ws, lambda fs: any(e["event_type"] == "price_change" for e in events(fs)))

    books = [ev for f in first for ev in decode_market_frame(f, assets)]
    assert [type(b) for b in books] == [BookSnapshot, BookSnapshot]
    yes = next(b for b in books if b.outcome is Outcome.YES)
    assert yes.bids[0] == (4800, 100 * QTY_ONE)  # best first once parsed
    assert yes.asks[0] == (5200, 100 * QTY_ONE)
    assert yes.tick_px == 100
    deltas = [ev for f in later for ev in decode_market_frame(f, assets)]
    assert (
        BookDelta(
            market=m["market"],
            outcome=Outcome.YES,
            ts_ns=deltas[0].ts_ns,
            side=Side.BUY,
            px=4900,
            qty=10 * QTY_ONE,
        )
        in deltas
    )
    # The same level, mirrored on the NO book, comes in the same message.
    assert any(d.outcome is Outcome.NO and d.side is Side.SELL and d.px == 5100 for d in deltas)


def test_trade_prints_last_trade_price_and_a_fresh_book(emu: Emulator, client: ClobClient):
    m = ids(emu, QUIET)
    assets = _assets(emu, QUIET)

    with connect(emu.ws_market_url) as ws:
        _subscribe_market(ws, m["yes_token"])
        recv_until(ws, lambda fs: len(events(fs)) >= 1)
        client.create_and_post_order(
            OrderArgsV2(token_id=m["yes_token"], price=0.52, size=10, side="BUY"), order_type=OrderType.FAK
        )
        frames = recv_until(
            ws,
            lambda fs: {"last_trade_price", "book"} <= {e["event_type"] for e in events(fs)},
        )

    evs = [ev for f in frames for ev in decode_market_frame(f, assets)]
    [print_] = [e for e in evs if isinstance(e, TradePrint)]
    assert (print_.px, print_.qty, print_.aggressor) == (5200, 10 * QTY_ONE, Side.BUY)
    book = next(e for e in evs if isinstance(e, BookSnapshot))
    assert book.asks[0] == (5200, 90 * QTY_ONE)


def test_tick_size_change_is_announced(emu: Emulator):
    m = ids(emu, QUIET)
    assets = _assets(emu, QUIET)

    with connect(emu.ws_market_url) as ws:
        _subscribe_market(ws, m["yes_token"])
        recv_until(ws, lambda fs: len(events(fs)) >= 1)
        emu.venue.set_tick(QUIET, 10)
        frames = recv_until(ws, lambda fs: any(e["event_type"] == "tick_size_change" for e in events(fs)))

    [tick] = [e for f in frames for e in decode_market_frame(f, assets) if isinstance(e, TickSizeChanged)]
    assert (tick.outcome, tick.tick_px) == (Outcome.YES, 10)


def test_ping_gets_pong_on_both_channels(emu: Emulator, client: ClobClient):
    creds = client.creds
    auth = {"apiKey": creds.api_key, "secret": creds.api_secret, "passphrase": creds.api_passphrase}

    with connect(emu.ws_market_url) as market, connect(emu.ws_user_url) as user:
        market.send("PING")
        user.send(json.dumps({"auth": auth, "markets": [], "type": "user"}))
        user.send("PING")

        assert market.recv(timeout=5) == "PONG"
        assert user.recv(timeout=5) == "PONG"


def test_flow_fill_reaches_the_user_channel():
    # The flow's takers and the trade statuses follow the fake clock: the test moves it until the
    # emulator's sellers have hit the bid, then past the CONFIRMED delay. No waiting on the wall clock.
    with Emulator(make_scenario(), port=0, clock=ManualClock()) as emu:
        client = make_client(emu)
        me = client.get_address().lower()
        m = ids(emu, BUSY)
        assets = _assets(emu, BUSY)
        creds = client.creds
        auth = {"apiKey": creds.api_key, "secret": creds.api_secret, "passphrase": creds.api_passphrase}

        with connect(emu.ws_user_url) as ws:
            ws.send(json.dumps({"auth": auth, "markets": [m["market"]], "type": "user"}))
            ws.send("PING")
            assert ws.recv(timeout=5) == "PONG"  # frames are handled in order: the subscription is in place
            # Improve the best bid (0.48): the emulator's sellers hit it next.
            resp = client.create_and_post_order(
                OrderArgsV2(token_id=m["yes_token"], price=0.49, size=5, side="BUY"),
                order_type=OrderType.GTC,
                post_only=True,
            )
            for _ in range(100):  # 8 takers/s, half of them sellers: filled within a few fake seconds
                if status(emu)["users"][me]["fills"]:
                    break
                control(emu, "POST", "/emulator/clock", {"advance_ms": 100})
            control(emu, "POST", "/emulator/clock", {"advance_ms": 120})  # past trade_confirmed_ms
            frames = recv_until(
                ws,
                lambda fs: any(
                    e.get("status") == "CONFIRMED" for e in events(fs) if e["event_type"] == "trade"
                ),
            )

    evs = [ev for f in frames for ev in decode_user_frame(f, assets)]
    trades = [e for e in evs if isinstance(e, VenueTrade)]
    orders = [e for e in evs if isinstance(e, VenueOrderUpdate) and e.order_id == resp["orderID"]]
    assert [t.status for t in trades] == ["MATCHED", "MINED", "CONFIRMED"]
    assert {t.trade_id for t in trades} == {trades[0].trade_id}
    assert all(t.trader_side == "MAKER" for t in trades)
    [leg] = trades[0].maker_fills
    assert (leg.order_id, leg.outcome, leg.side, leg.px, leg.qty) == (
        resp["orderID"],
        Outcome.YES,
        Side.BUY,
        4900,
        5 * QTY_ONE,
    )
    assert [o.type for o in orders] == ["PLACEMENT", "UPDATE"]
    assert (orders[-1].matched_qty, orders[-1].status) == (5 * QTY_ONE, "MATCHED")
    assert orders[-1].trade_ids == (trades[0].trade_id,)


def test_user_channel_refuses_bad_credentials(emu: Emulator, client: ClobClient):
    creds = client.creds
    auth = {"apiKey": creds.api_key, "secret": creds.api_secret, "passphrase": "wrong"}

    with connect(emu.ws_user_url) as ws:
        ws.send(json.dumps({"auth": auth, "markets": [], "type": "user"}))
        ws.recv_events_thread.join(timeout=5)

        assert ws.close_code == 1008


def test_a_six_decimal_fill_reaches_both_channels_and_open_orders_exactly(emu: Emulator, client: ClobClient):
    # A market SELL of 7.575758 shares (what a $5 market order leaves) into our 10-share bid at 0.49.
    m = ids(emu, QUIET)
    assets = _assets(emu, QUIET)
    creds = client.creds
    auth = {"apiKey": creds.api_key, "secret": creds.api_secret, "passphrase": creds.api_passphrase}

    with connect(emu.ws_user_url) as ws, connect(emu.ws_market_url) as market:
        ws.send(json.dumps({"auth": auth, "markets": [m["market"]], "type": "user"}))
        ws.send("PING")
        assert ws.recv(timeout=5) == "PONG"
        _subscribe_market(market, m["yes_token"])
        recv_until(market, lambda fs: len(events(fs)) >= 1)
        resp = client.create_and_post_order(
            OrderArgsV2(token_id=m["yes_token"], price=0.49, size=10, side="BUY"),
            order_type=OrderType.GTC,
            post_only=True,
        )
        emu.venue.take(QUIET, Side.SELL, 7_575_758, 4900)
        frames = recv_until(ws, lambda fs: any(e["event_type"] == "trade" for e in events(fs)))
        printed = recv_until(
            market, lambda fs: any(e["event_type"] == "last_trade_price" for e in events(fs))
        )
        # polymm's own reading of the listing, through the official client (the same key's API key).
        conn = connect_venue(environment_for(emu.clob_url), Secret(KEY_A))
        try:
            (row,) = PolymarketVenue(conn.client, conn.signer, _infos(emu, QUIET)).open_orders()
        finally:
            conn.client.close()

    evs = [ev for f in frames for ev in decode_user_frame(f, assets)]
    (trade,) = [e for e in evs if isinstance(e, VenueTrade)]
    (leg,) = trade.maker_fills
    assert (leg.order_id, leg.side, leg.px, leg.qty) == (resp["orderID"], Side.BUY, 4900, 7_575_758)
    update = [e for e in evs if isinstance(e, VenueOrderUpdate) and e.type == "UPDATE"][-1]
    assert (update.original_qty, update.matched_qty, update.status) == (10 * QTY_ONE, 7_575_758, "LIVE")
    (print_,) = [e for f in printed for e in decode_market_frame(f, assets) if isinstance(e, TradePrint)]
    assert (print_.px, print_.qty, print_.aggressor) == (4900, 7_575_758, Side.SELL)
    assert print_.trade_id == trade.transaction_hash != ""  # the market print names the user's trade
    assert (row.order_id, row.original_qty, row.matched_qty) == (resp["orderID"], 10 * QTY_ONE, 7_575_758)


# --- the feed in process (a fixed clock: every event of a test has the same millisecond) ------------


class _Sink:
    def __init__(self) -> None:
        self.frames: list[str] = []

    def send(self, text: str) -> None:
        self.frames.append(text)

    def drop(self, abrupt: bool) -> None:
        raise AssertionError("no faults here")


def _venue(cfg: MarketConfig) -> tuple[Venue, AssetMap, _Sink]:
    venue = Venue(Scenario(markets=(cfg,)), seed=5, clock=FakeClock())
    (m,) = venue.market_ids()
    assets = AssetMap({m["yes_token"]: (m["market"], Outcome.YES), m["no_token"]: (m["market"], Outcome.NO)})
    sink = _Sink()
    venue.subscribe_market(MarketSub(sink), [m["yes_token"], m["no_token"]], initial_dump=False)
    return venue, assets, sink


def test_each_trade_prints_on_both_tokens_with_its_own_transaction_hash():
    lot = 100 * QTY_ONE
    cfg = MarketConfig(
        slug="twice",
        initial_book=InitialBook(bids=((4800, lot),), asks=((5200, lot),)),
        flow=FlowConfig(enabled=False),
    )
    venue, assets, sink = _venue(cfg)

    # Two takers sell 5 shares each at the same price in the same millisecond.
    venue.take("twice", Side.SELL, 5 * QTY_ONE)
    venue.take("twice", Side.SELL, 5 * QTY_ONE)

    raw = [e for f in sink.frames for e in events([f]) if e["event_type"] == "last_trade_price"]
    prints = [e for f in sink.frames for e in decode_market_frame(f, assets) if isinstance(e, TradePrint)]
    view = YesView()
    once = [v for e in prints if (v := view.apply(e)) is not None]
    assert [(p.outcome, p.px, p.qty, p.ts_ns) for p in prints] == [
        (o, px, 5 * QTY_ONE, prints[0].ts_ns)
        for _ in range(2)
        for o, px in ((Outcome.YES, 4800), (Outcome.NO, 5200))
    ]
    hashes = [p.trade_id for p in prints]
    assert hashes[0] == hashes[1] != hashes[2] == hashes[3]  # one hash per trade, on both tokens
    assert all(h.startswith("0x") and len(h) == 66 for h in hashes)
    assert [e["transaction_hash"] for e in raw] == hashes
    assert [(p.outcome, p.px, p.trade_id) for p in once] == [
        (Outcome.YES, 4800, hashes[0]),
        (Outcome.YES, 4800, hashes[2]),
    ]


@pytest.mark.parametrize(
    ("tick_px", "fine", "bid", "want"),
    [
        (100, None, 300, 10),  # the venue's rule: 0.01 -> 0.001
        (100, 50, 300, 50),  # 0.01 -> 0.005
        (100, 25, 9_700, 25),  # 0.01 -> 0.0025, above 0.96
        (50, 25, 350, 25),  # 0.005 -> 0.0025
        (1000, 50, 9_000, 1000),  # 0.9 is inside [0.04, 0.96]: no change
        (10, None, 300, 10),  # 0.001 stays
    ],
)
def test_dynamic_tick_moves_to_the_scenarios_venue_tick(tick_px, fine, bid, want):
    lot = 100 * QTY_ONE
    cfg = MarketConfig(
        slug="edge",
        tick_px=tick_px,
        dynamic_tick_px=fine,
        initial_book=InitialBook(bids=((bid, lot),)),
        flow=FlowConfig(enabled=False),
    )
    venue, assets, sink = _venue(cfg)

    venue.take("edge", Side.SELL, 50 * QTY_ONE)  # at least $1 on either token (the marketable minimum)

    evs = [e for f in sink.frames for e in decode_market_frame(f, assets)]
    ticks = [(e.outcome, e.tick_px) for e in evs if isinstance(e, TickSizeChanged)]
    books = [e.tick_px for e in evs if isinstance(e, BookSnapshot)]
    (m,) = venue.market_ids()
    assert venue.tick_size(m["yes_token"]) == want
    assert ticks == ([] if want == tick_px else [(Outcome.YES, want), (Outcome.NO, want)])
    assert books == [want, want]  # the fresh book of each token after the trade
