"""The emulated venue: markets, accounts, orders, trades, heartbeats, feeds and counters.

One ``sim.matching.MatchingEngine`` per market does the matching (YES/NO on one book, mint and merge,
taker fees, TIF, post-only). The venue adds what the real CLOB adds around it:

* accounts per address (the API key's signer), with collateral shared by every market: the engines
  keep per-market cash deltas, and the venue checks free collateral across them before an order;
* venue order ids (the EIP-712 digest) and trade ids, ``/data/orders`` and ``/data/trades`` records,
  and trade statuses MATCHED → MINED → CONFIRMED on a timer;
* the heartbeat dead-man switch: once a user sends heartbeats, missing one for
  ``heartbeat_timeout_ms`` cancels all of its orders;
* the market channel (``book``, ``price_change``, ``last_trade_price``, ``tick_size_change``) and the
  user channel (``order``, ``trade``) as JSON text for subscribers;
* the other participants (``emulator.flow``), stepped from ``step(now_ns)``;
* counters of every order request, per claimed address, for tests.

All state is behind one lock; the REST handlers, WebSocket handlers and the background stepper call
in from their own threads. Subscribers' ``send`` must not block (the server queues frames).
Time comes from the injected ``Clock``; randomness from ``random.Random(seed)``.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Protocol

import msgspec

from adapters.polymarket.parse import AssetMap
from core.markets import MarketInfo
from core.messages import Accepted, Cancel, Canceled, Command, Filled, Place, Rejected, TradePrint
from core.ports import Clock
from core.units import (
    NS_PER_MS,
    NS_PER_S,
    PX_ONE,
    SETTLE_PER_QTY_USDC6,
    USDC6_ONE,
    USDC10_PER_USDC6,
    Outcome,
    Px,
    Qty,
    Side,
    format_px,
    format_qty,
    format_usdc6,
    int_to_decimal,
    notional_usdc6,
)
from emulator.auth import ApiCreds
from emulator.faults import Channel, FaultInjector
from emulator.flow import FLOW_MAKER, FLOW_TAKER, SEED, Flow, ReplayFlow, Submit, SyntheticFlow, flow_order_id
from emulator.gamma import GammaMarket, iso_utc
from emulator.orders import OrderError, PostOrder, order_to_px_qty, verify_signature
from emulator.scenario import (
    MarketConfig,
    RejectFault,
    Scenario,
    derive_ids,
    fine_tick_px,
    neg_risk_market_id,
)
from sim.matching import (
    REASON_BALANCE,
    REASON_FAK_NO_MATCH,
    REASON_FOK_KILLED,
    REASON_POST_ONLY_CROSSES,
    MatchingEngine,
    Report,
    Trade,
    fee_bound_usdc6,
)
from sim.replay_ws import events_from_messages, infer_asset_map, load_ws_messages
from sim.tape import tape_from_events

__all__ = [
    "ALLOWANCE_MAX",
    "END_CURSOR",
    "FIRST_CURSOR",
    "MarketSub",
    "PlaceResult",
    "Sink",
    "UserSub",
    "Venue",
    "VenueError",
    "WallClock",
    "book_hash",
]

FIRST_CURSOR: Final = "MA=="
END_CURSOR: Final = "LTE="
ALLOWANCE_MAX: Final = str(2**256 - 1)
_KILL_REASONS: Final = frozenset((REASON_POST_ONLY_CROSSES, REASON_FOK_KILLED, REASON_FAK_NO_MATCH))
_RESTING: Final = frozenset(("GTC", "GTD"))
_TICK_FLIP_LO: Final = 400  # the venue moves 0.01 -> 0.001 outside [0.04, 0.96] (``dynamic_tick``)
_TICK_FLIP_HI: Final = PX_ONE - 400
_SIDE_NAME: Final = {Side.BUY: "BUY", Side.SELL: "SELL"}
_EXCHANGE_ADDRESSES: Final = (
    "0xE111180000d2663C0091e4f400237545B87B996B",
    "0xe2222d279d744050d28e00520010520000310F59",
    "0xadA2005600Dec949baf300f4C6120000bDB6eAab",
)
_ENCODER: Final = msgspec.json.Encoder()


class WallClock:
    """The wall clock (``time.time_ns``), for live use of the emulator."""

    def now_ns(self) -> int:
        """Current time in ns since the epoch."""
        return time.time_ns()


class Sink(Protocol):
    """Where a WebSocket connection's frames go; ``send`` only queues."""

    def send(self, text: str) -> None:
        """Queue one text frame."""
        ...

    def drop(self, abrupt: bool) -> None:
        """Close the connection (fault injection)."""
        ...


class MarketSub:
    """A market-channel subscription: which token ids it follows."""

    __slots__ = ("assets", "sink")

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.assets: set[str] = set()


class UserSub:
    """A user-channel subscription: whose events, and for which markets (empty: all)."""

    __slots__ = ("address", "markets", "sink")

    def __init__(self, sink: Sink, address: str, markets: Iterable[str]) -> None:
        self.sink = sink
        self.address = address
        self.markets: set[str] = set(markets)


class VenueError(Exception):
    """A request the venue answers with an error status; ``body`` is the JSON to send."""

    def __init__(self, status: int, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body if body is not None else {"error": message}


class PlaceResult(msgspec.Struct, frozen=True, kw_only=True):
    """The reply to one order; ``http_status`` 400 means "answer ``{"error": errorMsg}``" for a single."""

    reply: dict[str, Any]
    http_status: int = 200


class _Market:
    __slots__ = (
        "cfg",
        "engine",
        "flow",
        "gamma_id",
        "last_trade",
        "market",
        "neg_risk_market_id",
        "no",
        "pending_books",
        "pending_levels",
        "pending_prints",
        "pending_ticks",
        "start_ns",
        "trades",
        "volume_qty",
        "yes",
    )

    def __init__(self, cfg: MarketConfig, gamma_id: str, start_ns: int) -> None:
        self.cfg = cfg
        self.market, self.yes, self.no = derive_ids(cfg)
        self.neg_risk_market_id = neg_risk_market_id(cfg)
        self.gamma_id = gamma_id
        self.start_ns = start_ns
        self.engine = MatchingEngine(
            self.market,
            tick_px=cfg.tick_px,
            min_qty=cfg.min_qty,
            fee_rate_ppm=cfg.fee_rate_ppm,
            enforce_balance=False,
            id_prefix=f"{cfg.slug}:",
        )
        self.flow: Flow | None = None
        self.last_trade: tuple[Px, Side] | None = None  # YES price and the YES-side aggressor
        self.trades = 0
        self.volume_qty = 0
        self.pending_levels: dict[tuple[Outcome, Side, Px], Qty] = {}
        self.pending_prints: list[TradePrint] = []
        self.pending_ticks: list[tuple[Px, Px]] = []
        self.pending_books = False

    def token(self, outcome: Outcome) -> str:
        return self.yes if outcome is Outcome.YES else self.no


class _Order:
    __slots__ = (
        "address",
        "api_key",
        "created_s",
        "expiration_s",
        "id",
        "maker_address",
        "market",
        "matched_qty",
        "order_type",
        "orig_qty",
        "outcome",
        "px",
        "side",
        "status",
        "taker_fills",
        "trade_ids",
    )

    def __init__(
        self, order_id: str, creds: ApiCreds, maker: str, m: _Market, place: Place, po: PostOrder, now_s: int
    ) -> None:
        self.id = order_id
        self.api_key = creds.api_key
        self.address = creds.address
        self.maker_address = maker
        self.market = m
        self.outcome = place.outcome
        self.side = place.side
        self.px = place.px
        self.orig_qty = place.qty
        self.matched_qty = 0
        self.status = "LIVE"
        self.order_type = po.order_type
        self.expiration_s = po.order.expiration_s if po.order_type == "GTD" else 0
        self.created_s = now_s
        self.trade_ids: list[str] = []
        self.taker_fills: list[tuple[Px, Qty]] = []


class _Trade:
    __slots__ = (
        "fee_usdc6",
        "id",
        "last_update_s",
        "legs",
        "market",
        "match_ns",
        "qty",
        "status",
        "taker_owner",
        "tx_hash",
    )

    def __init__(
        self, trade_id: str, m: _Market, legs: tuple[Trade, ...], match_ns: int, tx_hash: str
    ) -> None:
        self.id = trade_id
        self.market = m
        self.legs = legs
        self.match_ns = match_ns
        self.last_update_s = match_ns // NS_PER_S
        self.status = "MATCHED"
        self.tx_hash = tx_hash
        self.taker_owner = legs[0].taker_owner
        self.qty = sum(leg.qty for leg in legs)
        self.fee_usdc6 = sum(leg.taker_fee_usdc6 for leg in legs)


class _User:
    __slots__ = ("address", "cash0", "fills", "hb_armed", "hb_id", "hb_last_ns", "orders", "trades")

    def __init__(self, address: str, cash0: int) -> None:
        self.address = address
        self.cash0 = cash0
        self.orders: dict[str, _Order] = {}  # every order, in arrival order
        self.trades: list[tuple[_Trade, str]] = []  # (trade, "TAKER" | "MAKER")
        self.fills = 0
        self.hb_armed = False
        self.hb_id = ""
        self.hb_last_ns = 0


def book_hash(payload: Mapping[str, Any]) -> str:
    """The venue's book hash: sha1 of compact JSON in the venue's key order with ``hash`` empty."""
    keys = (
        "market",
        "asset_id",
        "timestamp",
        "hash",
        "bids",
        "asks",
        "min_order_size",
        "tick_size",
        "neg_risk",
        "last_trade_price",
    )
    body = {k: ("" if k == "hash" else payload[k]) for k in keys}
    return hashlib.sha1(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()  # noqa: S324 - the venue's own (non-security) hash


def _cursor(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode()


def _offset(cursor: str) -> int:
    if not cursor or cursor == FIRST_CURSOR:
        return 0
    try:
        return max(int(base64.b64decode(cursor).decode()), 0)
    except ValueError:
        raise VenueError(400, f"invalid next_cursor {cursor!r}") from None


def _participant(owner: str) -> tuple[str, str]:
    # A stable pseudo api key and address for the emulator's own participants.
    digest = hashlib.sha256(f"participant:{owner}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4)), "0x" + digest[12:32].hex()


class Venue:
    """The emulated CLOB behind the REST and WebSocket server (see the module docstring).

    Args:
        scenario: Markets, flow, accounts and faults.
        seed: Seed of the flow and fault randomness, and of every id the venue makes.
        clock: Time source (``WallClock`` live; tests may pass their own).
        base_dir: Directory that relative replay paths are read from.
    """

    def __init__(self, scenario: Scenario, seed: int, clock: Clock, base_dir: Path | None = None) -> None:
        self.scenario = scenario
        self.seed = seed
        self.clock = clock
        self.lock = threading.RLock()
        self.start_ns = clock.now_ns()
        rng = random.Random(seed)
        self.faults = FaultInjector(scenario.faults, random.Random(rng.getrandbits(64)))
        self._markets: list[_Market] = []
        self._by_cid: dict[str, _Market] = {}
        self._tokens: dict[str, tuple[_Market, Outcome]] = {}
        for i, cfg in enumerate(scenario.markets):
            m = _Market(cfg, str(900_001 + i), self.start_ns)
            if m.market in self._by_cid or m.yes in self._tokens or m.no in self._tokens or m.yes == m.no:
                raise ValueError(f"markets[{i}] ({cfg.slug}): condition or token id used twice")
            self._markets.append(m)
            self._by_cid[m.market] = m
            self._tokens[m.yes] = (m, Outcome.YES)
            self._tokens[m.no] = (m, Outcome.NO)
        self._users: dict[str, _User] = {}
        self._orders: dict[str, _Order] = {}
        self._trade_seq = 0
        self._trades_by_id: dict[str, _Trade] = {}
        self._hb_seq = 0
        self._take_seq = 0
        self._status_heap: list[tuple[int, int, str, _Trade]] = []
        self._requests: dict[str, Counter[str]] = {}
        self._market_subs: list[MarketSub] = []
        self._user_subs: list[UserSub] = []
        self._user_out: list[tuple[str, str, dict[str, Any]]] = []  # (address, market, event)
        self._frozen_market = False  # as of the last step, to resend books when a freeze ends
        for m in self._markets:
            self._seed_market(m, random.Random(rng.getrandbits(64)), base_dir)
        self._flush(self.start_ns)

    # --- setup -------------------------------------------------------------------------------------

    def _seed_market(self, m: _Market, rng: random.Random, base_dir: Path | None) -> None:
        cfg, ts = m.cfg, self.start_ns
        for levels, is_bid in ((cfg.initial_book.bids, True), (cfg.initial_book.asks, False)):
            for i, (px, qty) in enumerate(levels):
                outcome, own_px = (Outcome.YES, px) if is_bid else (Outcome.NO, PX_ONE - px)
                cid = f"seed-{'b' if is_bid else 'a'}{i}"
                place = Place(
                    market=m.market,
                    client_id=cid,
                    outcome=outcome,
                    side=Side.BUY,
                    px=own_px,
                    qty=qty,
                    post_only=False,
                )
                self._submit(m, SEED, place, ts)
        flow_cfg = cfg.flow if cfg.flow is not None else self.scenario.flow
        if cfg.replay is not None:
            m.flow = _replay_flow(m, cfg, self.seed, ts, base_dir)
        elif flow_cfg.enabled:
            m.flow = SyntheticFlow(flow_cfg, m.market, cfg.fair_px, rng, self.seed, ts)
        if m.flow is not None:
            # The first step posts the initial book, so the market is never empty when serving starts.
            m.flow.step(ts, m.engine, self._submitter(m, ts))

    # --- lookups -----------------------------------------------------------------------------------

    def now_ns(self) -> int:
        """The venue's clock."""
        return self.clock.now_ns()

    def elapsed_ms(self, now_ns: int | None = None) -> int:
        """Milliseconds since the venue started (fault windows are in these)."""
        return ((self.clock.now_ns() if now_ns is None else now_ns) - self.start_ns) // NS_PER_MS

    def _find(self, token_id: str) -> tuple[_Market, Outcome]:
        found = self._tokens.get(token_id)
        if found is None:
            raise VenueError(404, "No orderbook exists for the requested token id")
        return found

    def _market(self, key: str) -> _Market:
        m = self._by_cid.get(key) or next((x for x in self._markets if x.cfg.slug == key), None)
        if m is None:
            raise VenueError(404, f"market {key!r} not found")
        return m

    def market_ids(self) -> list[dict[str, str]]:
        """``{slug, market, yes_token, no_token}`` of every market."""
        with self.lock:
            return [
                {"slug": m.cfg.slug, "market": m.market, "yes_token": m.yes, "no_token": m.no}
                for m in self._markets
            ]

    def _user(self, address: str) -> _User:
        key = address.lower()
        user = self._users.get(key)
        if user is None:
            acct = self.scenario.account
            # Each split of shares_qty YES+NO pairs is funded with what it costs: 1 USDC a pair.
            cash0 = acct.cash_usdc6 + len(self._markets) * acct.shares_qty * SETTLE_PER_QTY_USDC6
            user = self._users[key] = _User(address, cash0)
            if acct.shares_qty:
                for m in self._markets:
                    m.engine.split(address, acct.shares_qty)
        return user

    def register(self, creds: ApiCreds) -> None:
        """Open the account of a key's address (on key creation or derivation)."""
        with self.lock:
            self._user(creds.address)

    def count_request(self, address: str, kind: str, n_orders: int = 0) -> None:
        """Count one order request (place, batch, cancel…) for the address it claims to come from."""
        with self.lock:
            c = self._requests.setdefault(address.lower() or "?", Counter())
            c[kind] += 1
            c["total"] += 1
            if n_orders:
                c["orders"] += n_orders

    # --- market data -------------------------------------------------------------------------------

    def _book(self, m: _Market, outcome: Outcome, ts_ms: int) -> dict[str, Any]:
        eng = m.engine
        bids = eng.depth(outcome, Side.BUY)
        asks = eng.depth(outcome, Side.SELL)
        book: dict[str, Any] = {
            "market": m.market,
            "asset_id": m.token(outcome),
            "timestamp": str(ts_ms),
            "hash": "",
            # Worst to best: the best level is last, as the venue serves it.
            "bids": [{"price": format_px(p), "size": format_qty(q)} for p, q in reversed(bids)],
            "asks": [{"price": format_px(p), "size": format_qty(q)} for p, q in reversed(asks)],
            "min_order_size": format_qty(eng.min_qty),
            "tick_size": format_px(eng.tick_px),
            "neg_risk": m.cfg.neg_risk,
            "last_trade_price": self._last_px_text(m, outcome),
        }
        book["hash"] = book_hash(book)
        return book

    def _last_px_text(self, m: _Market, outcome: Outcome) -> str:
        if m.last_trade is None:
            return ""
        px = m.last_trade[0]
        return format_px(px if outcome is Outcome.YES else PX_ONE - px)

    def book(self, token_id: str) -> dict[str, Any]:
        """``GET /book``: the token's book, best levels last."""
        with self.lock:
            m, outcome = self._find(token_id)
            return self._book(m, outcome, self.now_ns() // NS_PER_MS)

    def best(self, token_id: str) -> tuple[Px | None, Px | None]:
        """Best bid and best ask of a token."""
        with self.lock:
            m, outcome = self._find(token_id)
            return m.engine.best_bid(outcome), m.engine.best_ask(outcome)

    def midpoint(self, token_id: str) -> str:
        """The mid as a decimal string (5 decimals when it falls between two 1e-4 prices)."""
        bid, ask = self.best(token_id)
        if bid is None or ask is None:
            raise VenueError(404, "No orderbook exists for the requested token id")
        return int_to_decimal((bid + ask) * 5, 5)  # (bid + ask) / 2 in 1e-5 units

    def price(self, token_id: str, side: str) -> str:
        """``GET /price``: BUY gives the best bid, SELL the best ask (the resting side, as the venue does)."""
        bid, ask = self.best(token_id)
        match side.upper():
            case "BUY":
                px = bid
            case "SELL":
                px = ask
            case _:
                raise VenueError(400, "Invalid side")
        if px is None:
            raise VenueError(404, "No orderbook exists for the requested token id")
        return format_px(px)

    def spread(self, token_id: str) -> str:
        """Best ask minus best bid."""
        bid, ask = self.best(token_id)
        if bid is None or ask is None:
            raise VenueError(404, "No orderbook exists for the requested token id")
        return format_px(ask - bid)

    def last_trade_price(self, token_id: str) -> dict[str, str]:
        """``{"price", "side"}`` of the token's last trade (the taker's side on that token)."""
        with self.lock:
            m, outcome = self._find(token_id)
            if m.last_trade is None:
                return {"price": "0.5", "side": ""}
            yes_aggr = m.last_trade[1]
            side = yes_aggr if outcome is Outcome.YES else Side(-yes_aggr)
            return {"price": self._last_px_text(m, outcome), "side": _SIDE_NAME[side]}

    def tick_size(self, token_id: str) -> Px:
        """The token's current tick in Px."""
        with self.lock:
            return self._find(token_id)[0].engine.tick_px

    def token_info(self, token_id: str) -> tuple[str, bool, int]:
        """``(condition_id, neg_risk, fee_rate_ppm)`` of a token."""
        with self.lock:
            m = self._find(token_id)[0]
            return m.market, m.cfg.neg_risk, m.cfg.fee_rate_ppm

    def _clob_market(self, m: _Market) -> dict[str, Any]:
        bid = m.engine.best_bid(Outcome.YES)
        ask = m.engine.best_ask(Outcome.YES)
        yes_px = (bid + ask) / 2 / PX_ONE if bid is not None and ask is not None else 0.5
        end_ns = m.start_ns + int(m.cfg.end_in_days * 86_400) * NS_PER_S
        return {
            "enable_order_book": True,
            "active": True,
            "closed": False,
            "archived": False,
            "accepting_orders": True,
            "accepting_order_timestamp": iso_utc(m.start_ns),
            "minimum_order_size": float(format_qty(m.engine.min_qty)),
            "minimum_tick_size": float(format_px(m.engine.tick_px)),
            "condition_id": m.market,
            "question_id": "0x" + m.market[2:][::-1],
            "question": m.cfg.question or m.cfg.slug,
            "description": f"Emulated market {m.cfg.slug}.",
            "market_slug": m.cfg.slug,
            "end_date_iso": iso_utc(end_ns),
            "game_start_time": None,
            "seconds_delay": 0,
            "fpmm": "",
            "maker_base_fee": 1000 if m.cfg.fee_rate_ppm else 0,
            "taker_base_fee": 1000 if m.cfg.fee_rate_ppm else 0,
            "notifications_enabled": False,
            "neg_risk": m.cfg.neg_risk,
            "neg_risk_market_id": m.neg_risk_market_id,
            "neg_risk_request_id": "",
            "icon": "",
            "image": "",
            "rewards": {
                "rates": None,
                "min_size": float(format_qty(m.cfg.rewards_min_qty)),
                "max_spread": m.cfg.rewards_max_spread_px / 100,
            },
            "is_50_50_outcome": False,
            "tokens": [
                {"token_id": m.yes, "outcome": m.cfg.outcomes[0], "price": round(yes_px, 4), "winner": False},
                {
                    "token_id": m.no,
                    "outcome": m.cfg.outcomes[1],
                    "price": round(1 - yes_px, 4),
                    "winner": False,
                },
            ],
            "tags": list(m.cfg.tags),
        }

    def clob_markets(self) -> list[dict[str, Any]]:
        """Every market as the CLOB's ``GET /markets`` lists it."""
        with self.lock:
            return [self._clob_market(m) for m in self._markets]

    def clob_market(self, condition_id: str) -> dict[str, Any]:
        """One market as ``GET /markets/<condition_id>`` serves it."""
        with self.lock:
            m = self._by_cid.get(condition_id)
            if m is None:
                raise VenueError(404, "market not found")
            return self._clob_market(m)

    def clob_market_info(self, condition_id: str) -> dict[str, Any]:
        """``GET /clob-markets/<condition_id>``: the compact form the V2 client caches."""
        with self.lock:
            m = self._by_cid.get(condition_id)
            if m is None:
                raise VenueError(404, "market not found")
            return {
                "t": [{"t": m.yes, "o": m.cfg.outcomes[0]}, {"t": m.no, "o": m.cfg.outcomes[1]}],
                "mts": float(format_px(m.engine.tick_px)),
                "mos": float(format_qty(m.engine.min_qty)),
                "nr": m.cfg.neg_risk,
                "mbf": 1000 if m.cfg.fee_rate_ppm else 0,
                "tbf": 1000 if m.cfg.fee_rate_ppm else 0,
                "fd": {"r": m.cfg.fee_rate_ppm / 1_000_000, "e": 1, "to": True},
                "rfqe": False,
            }

    def gamma_markets(self) -> list[GammaMarket]:
        """What Gamma says about every market now."""
        with self.lock:
            out = []
            # The markets of one neg-risk event are one Gamma event, under its first market's event id.
            event_of: dict[str, str] = {}
            for m in self._markets:
                if m.neg_risk_market_id:
                    event_of.setdefault(m.neg_risk_market_id, str(int(m.gamma_id) + 100_000))
            for m in self._markets:
                eng = m.engine
                # The resting notional in Usdc10 (px * qty, exact), reported in USDC below.
                liquidity = sum(p * q for p, q in eng.depth(Outcome.YES, Side.BUY))
                liquidity += sum((PX_ONE - p) * q for p, q in eng.depth(Outcome.YES, Side.SELL))
                out.append(
                    GammaMarket(
                        gamma_id=m.gamma_id,
                        event_id=event_of.get(m.neg_risk_market_id, str(int(m.gamma_id) + 100_000)),
                        slug=m.cfg.slug,
                        question=m.cfg.question or m.cfg.slug,
                        condition_id=m.market,
                        token_ids=(m.yes, m.no),
                        outcomes=m.cfg.outcomes,
                        tick_px=eng.tick_px,
                        min_qty=eng.min_qty,
                        neg_risk=m.cfg.neg_risk,
                        neg_risk_market_id=m.neg_risk_market_id,
                        fee_rate_ppm=m.cfg.fee_rate_ppm,
                        maker_rebate_ppm=m.cfg.maker_rebate_ppm,
                        best_bid_px=eng.best_bid(Outcome.YES),
                        best_ask_px=eng.best_ask(Outcome.YES),
                        last_trade_px=m.last_trade[0] if m.last_trade else None,
                        liquidity_usdc=m.cfg.liquidity_usdc or liquidity / (USDC6_ONE * USDC10_PER_USDC6),
                        volume_24h=m.cfg.volume_24h,
                        start_ns=m.start_ns,
                        end_ns=m.start_ns + int(m.cfg.end_in_days * 86_400) * NS_PER_S,
                        tags=m.cfg.tags,
                        category=m.cfg.category,
                        rewards_min_qty=m.cfg.rewards_min_qty,
                        rewards_max_spread_px=m.cfg.rewards_max_spread_px,
                        rewards_daily_usdc6=m.cfg.rewards_daily_usdc6,
                        closed=eng.resolved is not None,
                    )
                )
            return out

    # --- orders ------------------------------------------------------------------------------------

    def _free_cash(self, user: _User) -> int:
        total = user.cash0
        for m in self._markets:
            b = m.engine.balance(user.address)
            total += b.cash_usdc6 - b.locked_cash_usdc6
        return total

    def _total_cash(self, user: _User) -> int:
        return user.cash0 + sum(m.engine.balance(user.address).cash_usdc6 for m in self._markets)

    def _balance_reason(self, m: _Market, user: _User, p: Place) -> str:
        # Collateral is shared by every market, so the venue checks it across engines. Checks the
        # engine makes first (tick, size, TIF, post-only cross) are left to the engine and its words.
        eng = m.engine
        tick = eng.tick_px
        resting = p.tif in _RESTING
        if p.px % tick or not tick <= p.px <= PX_ONE - tick or (p.post_only and not resting):
            return ""
        if resting and p.qty < eng.min_qty:
            return ""
        if not resting and p.px * p.qty < eng.min_marketable_usdc6 * USDC10_PER_USDC6:  # exact, in Usdc10
            return ""
        if p.side is Side.BUY:
            best = eng.best_ask(p.outcome)
            crosses = best is not None and best <= p.px
        else:
            best = eng.best_bid(p.outcome)
            crosses = best is not None and best >= p.px
        if p.post_only and crosses:
            return ""
        if p.side is Side.BUY:
            # Exact in Usdc10 (a user's order is on the 0.01-share grid, so its cash is a whole Usdc6).
            fee = fee_bound_usdc6(p.px, p.qty, eng.fee_rate_ppm) if crosses else 0
            need = p.px * p.qty + fee * USDC10_PER_USDC6
            return REASON_BALANCE if need > self._free_cash(user) * USDC10_PER_USDC6 else ""
        b = eng.balance(user.address)
        held = b.yes_qty - b.locked_yes_qty if p.outcome is Outcome.YES else b.no_qty - b.locked_no_qty
        return REASON_BALANCE if p.qty > held else ""

    def _reject(self, message: str, *, kill: bool) -> PlaceResult:
        sc = self.scenario
        status = sc.kill_reject_status if kill else sc.invalid_reject_status
        return PlaceResult(
            reply={
                "success": False,
                "errorMsg": message,
                "orderID": "",
                "status": "",
                "makingAmount": "",
                "takingAmount": "",
                "transactionsHashes": [],
                "tradeIDs": [],
            },
            http_status=status,
        )

    def place(
        self, creds: ApiCreds, orders: Sequence[PostOrder], rejects: Sequence[RejectFault | None]
    ) -> list[PlaceResult]:
        """Place orders of one request in order; one result per order."""
        with self.lock:
            now_ns = self.now_ns()
            out = [self._place_one(creds, po, rule, now_ns) for po, rule in zip(orders, rejects, strict=True)]
            self._flush(now_ns)
            return out

    def _place_one(
        self, creds: ApiCreds, po: PostOrder, rule: RejectFault | None, now_ns: int
    ) -> PlaceResult:
        o = po.order
        found = self._tokens.get(o.token_id)
        if found is None:
            return self._reject(f"invalid token id {o.token_id}: no such market", kill=False)
        m, outcome = found
        if o.version != self.scenario.order_version:
            return PlaceResult(
                reply={
                    "error": f"order_version_mismatch: the server takes version {self.scenario.order_version}"
                },
                http_status=400,
            )
        if po.owner != creds.api_key:
            return self._reject("the order owner has to be the owner of the API KEY", kill=False)
        try:
            order_id = verify_signature(o, neg_risk=m.cfg.neg_risk, owner_address=creds.address)
            px, qty = order_to_px_qty(o)
        except OrderError as exc:
            return self._reject(str(exc), kill=False)
        if rule is not None:
            return self._reject(rule.message, kill=rule.status == 200)
        if order_id in self._orders:
            return self._reject(f"order {order_id} is invalid. Duplicated.", kill=False)
        now_s = now_ns // NS_PER_S
        expire_ns = 0
        if po.order_type == "GTD":
            if o.expiration_s < now_s + self.scenario.gtd_min_lead_s:
                return self._reject("invalid expiration", kill=False)
            expire_ns = o.expiration_s * NS_PER_S
        place = Place(
            market=m.market,
            client_id=order_id,
            outcome=outcome,
            side=o.side,
            px=px,
            qty=qty,
            post_only=po.post_only,
            tif=po.order_type,
            expire_ns=expire_ns,
        )
        user = self._user(creds.address)
        reason = self._balance_reason(m, user, place)
        if reason:
            return self._reject(reason, kill=False)
        rec = _Order(order_id, creds, o.maker, m, place, po, now_s)
        self._orders[order_id] = rec
        user.orders[order_id] = rec
        report = self._submit(m, user.address, place, now_ns)
        for _, ev in report.execs:
            if isinstance(ev, Rejected) and ev.client_id == order_id:
                del self._orders[order_id]
                del user.orders[order_id]
                return self._reject(ev.reason, kill=ev.reason in _KILL_REASONS)
        fills, rec.taker_fills = rec.taker_fills, []
        shares = sum(q for _, q in fills)
        usdc = sum(notional_usdc6(p, q) for p, q in fills)
        trade_ids = [t for t in rec.trade_ids if self._trade_taker(t) == order_id]
        hashes = [self._trades_by_id[t].tx_hash for t in trade_ids]
        making, taking = (usdc, shares) if o.side is Side.BUY else (shares, usdc)
        return PlaceResult(
            reply={
                "success": True,
                "errorMsg": "",
                "orderID": order_id,
                "status": "matched" if shares else "live",
                "makingAmount": (format_usdc6(making) if o.side is Side.BUY else format_qty(making))
                if fills
                else "",
                "takingAmount": (format_qty(taking) if o.side is Side.BUY else format_usdc6(taking))
                if fills
                else "",
                "transactionsHashes": hashes,
                "tradeIDs": trade_ids,
            }
        )

    def _trade_taker(self, trade_id: str) -> str:
        return self._trades_by_id[trade_id].legs[0].taker_client_id

    def _own_order(self, user: _User | None, order_id: str) -> _Order | None:
        return user.orders.get(order_id) if user is not None else None

    def cancel(self, creds: ApiCreds, order_ids: Sequence[str]) -> dict[str, Any]:
        """Cancel orders by id: ``{"canceled": [...], "not_canceled": {id: reason}}``."""
        with self.lock:
            now_ns = self.now_ns()
            user = self._users.get(creds.address.lower())
            canceled: list[str] = []
            not_canceled: dict[str, str] = {}
            for oid in order_ids:
                rec = self._own_order(user, oid)
                if rec is None:
                    not_canceled[oid] = "order not found"
                elif rec.status != "LIVE":
                    not_canceled[oid] = "already canceled or matched"
                else:
                    self._submit(rec.market, rec.address, _cancel(rec), now_ns)
                    canceled.append(oid)
            self._flush(now_ns)
            return {"canceled": canceled, "not_canceled": not_canceled}

    def _cancel_where(self, creds: ApiCreds, market: str = "", asset_id: str = "") -> dict[str, Any]:
        with self.lock:
            now_ns = self.now_ns()
            user = self._users.get(creds.address.lower())
            canceled: list[str] = []
            for rec in list(user.orders.values()) if user is not None else ():
                if rec.status != "LIVE":
                    continue
                if market and rec.market.market != market:
                    continue
                if asset_id and rec.market.token(rec.outcome) != asset_id:
                    continue
                self._submit(rec.market, rec.address, _cancel(rec), now_ns)
                canceled.append(rec.id)
            self._flush(now_ns)
            return {"canceled": canceled, "not_canceled": {}}

    def cancel_all(self, creds: ApiCreds) -> dict[str, Any]:
        """Cancel every open order of the key's account."""
        return self._cancel_where(creds)

    def cancel_market(self, creds: ApiCreds, market: str, asset_id: str) -> dict[str, Any]:
        """Cancel the account's open orders in ``market`` and/or on ``asset_id`` ("" = any)."""
        return self._cancel_where(creds, market, asset_id)

    def _order_json(self, rec: _Order) -> dict[str, Any]:
        m = rec.market
        return {
            "id": rec.id,
            "status": rec.status,
            "owner": rec.api_key,
            "maker_address": rec.maker_address,
            "market": m.market,
            "asset_id": m.token(rec.outcome),
            "side": _SIDE_NAME[rec.side],
            "original_size": format_qty(rec.orig_qty),
            "size_matched": format_qty(rec.matched_qty),
            "price": format_px(rec.px),
            "outcome": m.cfg.outcomes[rec.outcome],
            "expiration": str(rec.expiration_s),
            "order_type": rec.order_type,
            "associate_trades": list(rec.trade_ids),
            "created_at": rec.created_s,
        }

    @staticmethod
    def _page(items: list[dict[str, Any]], cursor: str, size: int) -> dict[str, Any]:
        start = _offset(cursor)
        page = items[start : start + size]
        end = start + len(page)
        return {
            "data": page,
            "next_cursor": END_CURSOR if end >= len(items) else _cursor(end),
            "limit": size,
            "count": len(page),
        }

    def open_orders(self, creds: ApiCreds, query: Mapping[str, str], cursor: str) -> dict[str, Any]:
        """``GET /data/orders``: one page of the account's open orders (``id``/``market``/``asset_id``)."""
        with self.lock:
            user = self._users.get(creds.address.lower())
            items = []
            for rec in user.orders.values() if user is not None else ():
                if rec.status != "LIVE":
                    continue
                if query.get("id") and rec.id != query["id"]:
                    continue
                if query.get("market") and rec.market.market != query["market"]:
                    continue
                if query.get("asset_id") and rec.market.token(rec.outcome) != query["asset_id"]:
                    continue
                items.append(self._order_json(rec))
            return self._page(items, cursor, self.scenario.page_size)

    def order(self, creds: ApiCreds, order_id: str) -> dict[str, Any]:
        """``GET /data/order/<id>``: one of the account's orders, whatever its status."""
        with self.lock:
            rec = self._own_order(self._users.get(creds.address.lower()), order_id)
            if rec is None:
                raise VenueError(404, "order not found")
            return self._order_json(rec)

    def trades(self, creds: ApiCreds, query: Mapping[str, str], cursor: str) -> dict[str, Any]:
        """``GET /data/trades``: one page of the account's trades, newest last."""
        with self.lock:
            user = self._users.get(creds.address.lower())
            items = []
            for t, role in user.trades if user is not None else ():
                js = self._trade_json(t, user.address, role)  # type: ignore[union-attr]
                if query.get("id") and t.id != query["id"]:
                    continue
                if query.get("market") and t.market.market != query["market"]:
                    continue
                if query.get("asset_id") and query["asset_id"] not in (
                    js["asset_id"],
                    *(mo["asset_id"] for mo in js["maker_orders"]),
                ):
                    continue
                if (
                    query.get("maker_address")
                    and query["maker_address"].lower() != js["maker_address"].lower()
                ):
                    continue
                match_s = t.match_ns // NS_PER_S
                if query.get("before") and match_s >= _int(query["before"]):
                    continue
                if query.get("after") and match_s <= _int(query["after"]):
                    continue
                items.append(js)
            return self._page(items, cursor, self.scenario.page_size)

    def balance_allowance(self, creds: ApiCreds, asset_type: str, token_id: str) -> dict[str, Any]:
        """``GET /balance-allowance``: collateral or one token's shares, in 6-decimal units."""
        with self.lock:
            user = self._user(creds.address)
            match asset_type.upper():
                case "COLLATERAL" | "":
                    balance = self._total_cash(user)
                case "CONDITIONAL":
                    m, outcome = self._find(token_id)
                    b = m.engine.balance(user.address)
                    balance = b.yes_qty if outcome is Outcome.YES else b.no_qty  # Qty is the token unit
                case _:
                    raise VenueError(400, f"invalid asset_type {asset_type!r}")
            return {"balance": str(balance), "allowances": dict.fromkeys(_EXCHANGE_ADDRESSES, ALLOWANCE_MAX)}

    def heartbeat(self, creds: ApiCreds, heartbeat_id: str | None) -> dict[str, Any]:
        """``POST /v1/heartbeats``: arm or feed the dead-man switch; a stale id is refused."""
        with self.lock:
            user = self._user(creds.address)
            if heartbeat_id and user.hb_armed and heartbeat_id != user.hb_id:
                raise VenueError(
                    400,
                    "Invalid Heartbeat ID",
                    {
                        "error": "Invalid Heartbeat ID",
                        "error_msg": "Invalid Heartbeat ID",
                        "heartbeat_id": user.hb_id,
                    },
                )
            self._hb_seq += 1
            digest = hashlib.sha256(f"{self.seed}:heartbeat:{self._hb_seq}".encode()).digest()
            user.hb_id = str(uuid.UUID(bytes=digest[:16], version=4))
            user.hb_armed = True
            user.hb_last_ns = self.now_ns()
            return {"status": "ok", "heartbeat_id": user.hb_id}

    # --- engine reports ----------------------------------------------------------------------------

    def _submit(self, m: _Market, owner: str, cmd: Command, now_ns: int) -> Report:
        report = m.engine.submit(owner, cmd, now_ns)
        self._absorb(m, report, now_ns)
        return report

    def _submitter(self, m: _Market, now_ns: int) -> Submit:
        def submit(owner: str, cmd: Command) -> Report:
            return self._submit(m, owner, cmd, now_ns)

        return submit

    def _absorb(self, m: _Market, report: Report, now_ns: int) -> None:
        for d in report.deltas:
            m.pending_levels[(d.outcome, d.side, d.px)] = d.qty
        by_engine_tid: dict[str, _Trade] = {}
        if report.trades:
            t = self._new_trade(m, report.trades, now_ns)
            for leg in report.trades:
                by_engine_tid[leg.trade_id] = t
            # Each match prints on both tokens; both prints carry the trade's transaction hash (as the
            # user channel's ``transaction_hash``), unique per trade, so a reader counts the match once.
            m.pending_prints.extend(msgspec.structs.replace(p, trade_id=t.tx_hash) for p in report.prints)
        if report.prints:
            m.pending_books = True
            last = report.prints[-2] if report.prints[-1].outcome is Outcome.NO else report.prints[-1]
            m.last_trade = (last.px, last.aggressor)
        for owner, ev in report.execs:
            user = self._users.get(owner.lower())
            if user is None:
                continue
            rec = user.orders.get(ev.client_id)
            if rec is None:
                continue
            match ev:
                case Accepted():
                    self._order_event(rec, "PLACEMENT", now_ns)
                case Filled():
                    rec.matched_qty += ev.qty
                    user.fills += 1
                    venue_trade = by_engine_tid.get(ev.trade_id)
                    if venue_trade is not None and venue_trade.id not in rec.trade_ids:
                        rec.trade_ids.append(venue_trade.id)
                    if ev.liquidity == "taker":
                        rec.taker_fills.append((ev.px, ev.qty))
                    if not ev.leaves_qty:
                        rec.status = "MATCHED"
                    self._order_event(rec, "UPDATE", now_ns)
                case Canceled():
                    rec.status = "CANCELED"
                    self._order_event(rec, "CANCELLATION", now_ns)
                case Rejected():
                    pass
        if report.trades:
            self._trade_events(by_engine_tid[report.trades[0].trade_id], now_ns)
        fine = fine_tick_px(m.cfg)
        if report.prints and fine < m.cfg.tick_px == m.engine.tick_px and m.last_trade is not None:
            px = m.last_trade[0]
            if px < _TICK_FLIP_LO or px > _TICK_FLIP_HI:
                self._change_tick(m, fine)

    def _change_tick(self, m: _Market, tick_px: Px) -> None:
        old = m.engine.tick_px
        if tick_px == old:
            return
        m.engine.set_tick(tick_px)
        m.pending_ticks.append((old, tick_px))
        m.pending_books = True

    def set_tick(self, market: str, tick_px: Px) -> None:
        """Change a market's tick now (``tick_size_change`` then a fresh ``book`` on the feed)."""
        with self.lock:
            m = self._market(market)
            self._change_tick(m, tick_px)
            self._flush(self.now_ns())

    def _new_trade(self, m: _Market, legs: tuple[Trade, ...], now_ns: int) -> _Trade:
        self._trade_seq += 1
        digest = hashlib.sha256(f"{self.seed}:trade:{self._trade_seq}".encode()).digest()
        t = _Trade(
            str(uuid.UUID(bytes=digest[:16], version=4)),
            m,
            legs,
            now_ns,
            "0x" + hashlib.sha256(b"tx" + digest).hexdigest(),
        )
        self._trades_by_id[t.id] = t
        m.trades += 1
        m.volume_qty += t.qty
        parties: list[tuple[str, str]] = []
        if t.taker_owner.lower() in self._users:
            parties.append((t.taker_owner, "TAKER"))
        for leg in legs:
            if leg.maker_owner.lower() in self._users and (leg.maker_owner, "MAKER") not in parties:
                parties.append((leg.maker_owner, "MAKER"))
        for owner, role in parties:
            self._users[owner.lower()].trades.append((t, role))
        sc = self.scenario
        heapq.heappush(
            self._status_heap, (now_ns + sc.trade_mined_ms * NS_PER_MS, self._trade_seq * 2, "MINED", t)
        )
        heapq.heappush(
            self._status_heap,
            (now_ns + sc.trade_confirmed_ms * NS_PER_MS, self._trade_seq * 2 + 1, "CONFIRMED", t),
        )
        return t

    def _party_key(self, owner: str, order_id: str) -> tuple[str, str]:
        rec = self._orders.get(order_id)
        if rec is not None:
            return rec.api_key, rec.maker_address
        return _participant(owner)

    def _trade_json(self, t: _Trade, address: str, role: str) -> dict[str, Any]:
        m = t.market
        first = t.legs[0]
        taker_key, taker_addr = self._party_key(first.taker_owner, first.taker_client_id)
        legs = (
            t.legs
            if role == "TAKER"
            else tuple(x for x in t.legs if x.maker_owner.lower() == address.lower())
        )
        maker_orders = []
        for leg in legs:
            key, addr = self._party_key(leg.maker_owner, leg.maker_client_id)
            maker_orders.append(
                {
                    "order_id": leg.maker_client_id,
                    "owner": key,
                    "maker_address": addr,
                    "matched_amount": format_qty(leg.qty),
                    "price": format_px(leg.maker_px),
                    "fee_rate_bps": "0",
                    "asset_id": m.token(leg.maker_outcome),
                    "outcome": m.cfg.outcomes[leg.maker_outcome],
                    "side": _SIDE_NAME[leg.maker_side],
                }
            )
        owner_key = taker_key if role == "TAKER" else (maker_orders[0]["owner"] if maker_orders else "")
        match_s = str(t.match_ns // NS_PER_S)
        return {
            "id": t.id,
            "taker_order_id": first.taker_client_id,
            "market": m.market,
            "asset_id": m.token(first.taker_outcome),
            "side": _SIDE_NAME[first.taker_side],
            "size": format_qty(t.qty),
            "fee_rate_bps": str(m.cfg.fee_rate_ppm // 100),
            "price": format_px(first.taker_px),
            "status": t.status,
            "match_time": match_s,
            "last_update": str(t.last_update_s),
            "outcome": m.cfg.outcomes[first.taker_outcome],
            "bucket_index": 0,
            "owner": owner_key,
            "trade_owner": owner_key,
            "maker_address": taker_addr
            if role == "TAKER"
            else (maker_orders[0]["maker_address"] if maker_orders else address),
            "transaction_hash": t.tx_hash,
            "trader_side": role,
            "maker_orders": maker_orders,
        }

    def _order_event(self, rec: _Order, kind: str, now_ns: int) -> None:
        ev = self._order_json(rec)
        ev.update(
            {
                "event_type": "order",
                "type": kind,
                "order_owner": rec.api_key,
                "timestamp": str(now_ns // NS_PER_MS),
            }
        )
        ev["created_at"] = str(rec.created_s)
        self._user_out.append((rec.address, rec.market.market, ev))

    def _trade_events(self, t: _Trade, now_ns: int) -> None:
        for user_key in {owner.lower() for owner in (t.taker_owner, *(x.maker_owner for x in t.legs))}:
            user = self._users.get(user_key)
            if user is None:
                continue
            for tt, role in user.trades:
                if tt is t:
                    ev = self._trade_json(t, user.address, role)
                    ev.update({"event_type": "trade", "type": "TRADE", "timestamp": str(now_ns // NS_PER_MS)})
                    self._user_out.append((user.address, t.market.market, ev))

    # --- background --------------------------------------------------------------------------------

    def step(self, now_ns: int | None = None) -> None:
        """Advance the venue to now: expiries, heartbeats, trade statuses, flow, scheduled faults."""
        with self.lock:
            now_ns = self.now_ns() if now_ns is None else now_ns
            for m in self._markets:
                report = m.engine.expire(now_ns)
                if report.execs or report.deltas:
                    self._absorb(m, report, now_ns)
            timeout_ns = self.scenario.heartbeat_timeout_ms * NS_PER_MS
            for user in self._users.values():
                if user.hb_armed and now_ns - user.hb_last_ns > timeout_ns:
                    user.hb_armed = False
                    user.hb_id = ""
                    for rec in list(user.orders.values()):
                        if rec.status == "LIVE":
                            self._submit(rec.market, rec.address, _cancel(rec), now_ns)
                    self._requests.setdefault(user.address.lower(), Counter())["heartbeat_expired"] += 1
            while self._status_heap and self._status_heap[0][0] <= now_ns:
                _, _, status, t = heapq.heappop(self._status_heap)
                t.status = status
                t.last_update_s = now_ns // NS_PER_S
                self._trade_events(t, now_ns)
            for m in self._markets:
                if m.flow is not None and m.engine.resolved is None:
                    m.flow.step(now_ns, m.engine, self._submitter(m, now_ns))
            elapsed = self.elapsed_ms(now_ns)
            for rule in self.faults.due_drops(elapsed):
                if rule.channel in ("market", "all"):
                    for ms in self._market_subs:
                        ms.sink.drop(rule.abrupt)
                if rule.channel in ("user", "all"):
                    for us in self._user_subs:
                        us.sink.drop(rule.abrupt)
            was = self._frozen_market
            self._frozen_market = self._is_frozen("market", now_ns)
            self._flush(now_ns)
            if was and not self._frozen_market:
                for sub in self._market_subs:
                    self._send_books(sub, sub.assets, now_ns)

    def _is_frozen(self, channel: Channel, now_ns: int | None = None) -> bool:
        return self.faults.frozen(channel, self.elapsed_ms(now_ns)) is not None

    def pong_allowed(self, channel: Channel) -> bool:
        """Whether a ``PING`` on ``channel`` gets its ``PONG`` now (a freeze may hold them back)."""
        rule = self.faults.frozen(channel, self.elapsed_ms())
        return rule is None or rule.pong

    # --- feeds -------------------------------------------------------------------------------------

    def _send_books(self, sub: MarketSub, assets: Iterable[str], now_ns: int) -> None:
        books = []
        for a in assets:
            found = self._tokens.get(a)
            if found is not None:
                book = self._book(found[0], found[1], now_ns // NS_PER_MS)
                book["event_type"] = "book"
                books.append(book)
        if books:
            sub.sink.send(_ENCODER.encode(books).decode())

    def subscribe_market(self, sub: MarketSub, assets: Sequence[str], *, initial_dump: bool = True) -> None:
        """Add token ids to a market subscription; a ``book`` for each known one follows at once."""
        with self.lock:
            if sub not in self._market_subs:
                self._market_subs.append(sub)
            new = [a for a in assets if a not in sub.assets]
            sub.assets.update(assets)
            if initial_dump and not self._is_frozen("market"):
                self._send_books(sub, new, self.now_ns())

    def unsubscribe_market(self, sub: MarketSub, assets: Sequence[str]) -> None:
        """Stop following some token ids."""
        with self.lock:
            sub.assets.difference_update(assets)

    def subscribe_user(self, sub: UserSub) -> None:
        """Register a user-channel subscription."""
        with self.lock:
            if sub not in self._user_subs:
                self._user_subs.append(sub)

    def remove_sub(self, sub: MarketSub | UserSub) -> None:
        """Forget a subscription (its connection closed)."""
        with self.lock:
            if isinstance(sub, MarketSub):
                if sub in self._market_subs:
                    self._market_subs.remove(sub)
            elif sub in self._user_subs:
                self._user_subs.remove(sub)

    def _flush(self, now_ns: int) -> None:
        ts = str(now_ns // NS_PER_MS)
        frozen = self._is_frozen("market", now_ns)
        for m in self._markets:
            if not (m.pending_levels or m.pending_prints or m.pending_ticks or m.pending_books):
                continue
            frames: list[tuple[str | None, dict[str, Any]]] = []  # (asset or None for both, event)
            if m.pending_levels:
                books = {o: self._book(m, o, now_ns // NS_PER_MS) for o in (Outcome.YES, Outcome.NO)}
                best = {o: (m.engine.best_bid(o), m.engine.best_ask(o)) for o in (Outcome.YES, Outcome.NO)}
                changes = []
                for (outcome, side, px), qty in m.pending_levels.items():
                    bid, ask = best[outcome]
                    changes.append(
                        {
                            "asset_id": m.token(outcome),
                            "price": format_px(px),
                            "size": format_qty(qty),
                            "side": _SIDE_NAME[side],
                            "hash": books[outcome]["hash"],
                            "best_bid": format_px(bid) if bid is not None else "0",
                            "best_ask": format_px(ask) if ask is not None else "1",
                        }
                    )
                frames.append(
                    (
                        None,
                        {
                            "market": m.market,
                            "price_changes": changes,
                            "timestamp": ts,
                            "event_type": "price_change",
                        },
                    )
                )
            for p in m.pending_prints:
                frames.append(
                    (
                        m.token(p.outcome),
                        {
                            "asset_id": m.token(p.outcome),
                            "market": m.market,
                            "price": format_px(p.px),
                            "size": format_qty(p.qty),
                            "side": _SIDE_NAME[p.aggressor],
                            "fee_rate_bps": str(m.cfg.fee_rate_ppm // 100),
                            "timestamp": ts,
                            "transaction_hash": p.trade_id,
                            "event_type": "last_trade_price",
                        },
                    )
                )
            for old, new in m.pending_ticks:
                for o in (Outcome.YES, Outcome.NO):
                    frames.append(
                        (
                            m.token(o),
                            {
                                "event_type": "tick_size_change",
                                "asset_id": m.token(o),
                                "market": m.market,
                                "old_tick_size": format_px(old),
                                "new_tick_size": format_px(new),
                                "timestamp": ts,
                            },
                        )
                    )
            if m.pending_books:
                for o in (Outcome.YES, Outcome.NO):
                    book = self._book(m, o, now_ns // NS_PER_MS)
                    book["event_type"] = "book"
                    frames.append((m.token(o), book))
            m.pending_levels.clear()
            m.pending_prints.clear()
            m.pending_ticks.clear()
            m.pending_books = False
            if frozen:
                continue
            for sub in self._market_subs:
                for asset, ev in frames:
                    if asset is None:
                        mine = [c for c in ev["price_changes"] if c["asset_id"] in sub.assets]
                        if mine:
                            sub.sink.send(_ENCODER.encode({**ev, "price_changes": mine}).decode())
                    elif asset in sub.assets:
                        sub.sink.send(_ENCODER.encode(ev).decode())
        out, self._user_out = self._user_out, []
        if self._is_frozen("user", now_ns):
            return
        for address, market, ev in out:
            text = ""
            for us in self._user_subs:
                if us.address.lower() == address.lower() and (not us.markets or market in us.markets):
                    text = text or _ENCODER.encode(ev).decode()
                    us.sink.send(text)

    # --- test and ops helpers ----------------------------------------------------------------------

    def take(self, market: str, side: Side, qty: Qty, limit_px: Px | None = None) -> Report:
        """Send one taker order of the flow now (YES side ``side``, FAK at ``limit_px`` or the touch)."""
        with self.lock:
            m = self._market(market)
            now_ns = self.now_ns()
            eng = m.engine
            if limit_px is None:
                best = eng.best_ask(Outcome.YES) if side is Side.BUY else eng.best_bid(Outcome.YES)
                if best is None:
                    raise VenueError(400, "nothing to take")
                limit_px = best
            outcome, px = (Outcome.YES, limit_px) if side is Side.BUY else (Outcome.NO, PX_ONE - limit_px)
            self._take_seq += 1
            cid = flow_order_id(self.seed, "take", self._take_seq)
            report = self._submit(
                m,
                FLOW_TAKER,
                Place(
                    market=m.market,
                    client_id=cid,
                    outcome=outcome,
                    side=Side.BUY,
                    px=px,
                    qty=qty,
                    post_only=False,
                    tif="FAK",
                ),
                now_ns,
            )
            self._flush(now_ns)
            return report

    def status(self) -> dict[str, Any]:
        """Counters, open orders and fills per user, and per-market state (``GET /emulator/status``)."""
        with self.lock:
            now_ns = self.now_ns()
            users: dict[str, dict[str, Any]] = {}
            for key in sorted(set(self._users) | set(self._requests)):
                user = self._users.get(key)
                users[key] = {
                    "address": user.address if user is not None else key,
                    "requests": dict(self._requests.get(key, Counter())),
                    "open_orders": sum(1 for r in user.orders.values() if r.status == "LIVE") if user else 0,
                    "orders": len(user.orders) if user else 0,
                    "fills": user.fills if user else 0,
                    "trades": len(user.trades) if user else 0,
                    "cash_usdc6": self._total_cash(user) if user else 0,
                    "free_cash_usdc6": self._free_cash(user) if user else 0,
                    "heartbeat_armed": user.hb_armed if user else False,
                }
            totals: Counter[str] = Counter()
            for c in self._requests.values():
                totals.update(c)
            return {
                "uptime_ms": (now_ns - self.start_ns) // NS_PER_MS,
                "seed": self.seed,
                "scenario": self.scenario.name,
                "requests": dict(totals),
                "users": users,
                "markets": [
                    {
                        "slug": m.cfg.slug,
                        "market": m.market,
                        "yes_token": m.yes,
                        "no_token": m.no,
                        "tick_size": format_px(m.engine.tick_px),
                        "best_bid": _fmt(m.engine.best_bid(Outcome.YES)),
                        "best_ask": _fmt(m.engine.best_ask(Outcome.YES)),
                        "trades": m.trades,
                        "volume": format_qty(m.volume_qty),
                        "flow_owners": [FLOW_MAKER, FLOW_TAKER, SEED],
                    }
                    for m in self._markets
                ],
                "subscriptions": {"market": len(self._market_subs), "user": len(self._user_subs)},
                "faults": dict(self.faults.counts),
                "frozen": {ch: self._is_frozen(ch, now_ns) for ch in ("market", "user")},
            }


def _fmt(px: Px | None) -> str | None:
    return None if px is None else format_px(px)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise VenueError(400, f"not an integer: {text!r}") from None


def _cancel(rec: _Order) -> Command:
    return Cancel(market=rec.market.market, client_id=rec.id)


def _replay_flow(
    m: _Market, cfg: MarketConfig, seed: int, start_ns: int, base_dir: Path | None
) -> ReplayFlow:
    assert cfg.replay is not None
    path = Path(cfg.replay.path)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    msgs = load_ws_messages(path)
    inferred = infer_asset_map(msgs)
    yes = cfg.replay.yes_token or next(iter(inferred.asset_ids()), "")
    found = inferred.get(yes)
    if found is None:
        raise ValueError(f"{cfg.slug}: replay.yes_token {yes!r} is not in {path}")
    recorded = found[0]
    other = [a for a, (mk, _) in inferred.items() if mk == recorded and a != yes]
    entries = {yes: (recorded, Outcome.YES)}
    if other:
        entries[other[0]] = (recorded, Outcome.NO)
    events = [ev for ev in events_from_messages(msgs, AssetMap(entries)) if ev.market == recorded]
    info = MarketInfo(
        market=m.market, yes_token=m.yes, no_token=m.no, tick_px=cfg.tick_px, min_qty=cfg.min_qty
    )
    tape = tape_from_events(info, events)
    return ReplayFlow(
        tape, m.market, seed=seed, start_ns=start_ns, speed=cfg.replay.speed, loop=cfg.replay.loop
    )
