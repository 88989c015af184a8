"""The venue's state: market, order, trade and account records, and the base every venue layer shares.

The venue is built in layers, each a class over the one below (``VenueState`` <- ``Channels`` <-
``Accounts`` <- ``MarketData`` <- ``OrderEntry`` <- ``Venue``), so each file holds one concern and
only calls down. All state is behind ``lock`` (an ``RLock``): REST handlers, WebSocket handlers and the
background stepper call in from their own threads.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import Counter
from typing import Any, Final

import msgspec

from core.messages import Cancel, Command, Place, TradePrint
from core.ports import Clock
from core.units import (
    NS_PER_MS,
    NS_PER_S,
    SETTLE_PER_QTY_USDC6,
    Outcome,
    Px,
    Qty,
    Side,
)
from emulator.auth import ApiCreds
from emulator.faults import FaultInjector
from emulator.flow import Flow
from emulator.orders import PostOrder
from emulator.ratelimit import RateLimiter
from emulator.scenario import (
    MarketConfig,
    Scenario,
    derive_ids,
    neg_risk_market_id,
)
from venue.matching import (
    REASON_FAK_NO_MATCH,
    REASON_FOK_KILLED,
    REASON_POST_ONLY_CROSSES,
    MatchingEngine,
    Trade,
)

__all__ = [
    "ALLOWANCE_MAX",
    "END_CURSOR",
    "EXCHANGE_ADDRESSES",
    "FIRST_CURSOR",
    "KILL_REASONS",
    "RESTING",
    "SIDE_NAME",
    "Account",
    "ManualClock",
    "MarketState",
    "OrderRecord",
    "PlaceResult",
    "TradeRecord",
    "VenueError",
    "VenueState",
    "WallClock",
    "cancel_command",
    "int_param",
]

FIRST_CURSOR: Final = "MA=="
END_CURSOR: Final = "LTE="
ALLOWANCE_MAX: Final = str(2**256 - 1)
KILL_REASONS: Final = frozenset((REASON_POST_ONLY_CROSSES, REASON_FOK_KILLED, REASON_FAK_NO_MATCH))
RESTING: Final = frozenset(("GTC", "GTD"))
SIDE_NAME: Final = {Side.BUY: "BUY", Side.SELL: "SELL"}
EXCHANGE_ADDRESSES: Final = (
    "0xE111180000d2663C0091e4f400237545B87B996B",
    "0xe2222d279d744050d28e00520010520000310F59",
    "0xadA2005600Dec949baf300f4C6120000bDB6eAab",
)


class WallClock:
    """The wall clock (``time.time_ns``), for live use of the emulator."""

    def now_ns(self) -> int:
        """Current time in ns since the epoch."""
        return time.time_ns()


class ManualClock:
    """A clock that moves only when told: ``advance`` (tests, ``POST /emulator/clock``). Thread-safe.

    Starts at the wall clock's now by default, so the clients' signed timestamps stay within the
    venue's ``auth_max_skew_s`` while the test moves time by minutes.
    """

    def __init__(self, now_ns: int | None = None) -> None:
        self._lock = threading.Lock()
        self._now_ns = time.time_ns() if now_ns is None else now_ns

    def now_ns(self) -> int:
        """The current (set) time in ns since the epoch."""
        with self._lock:
            return self._now_ns

    def advance(self, ns: int) -> int:
        """Move forward by ``ns`` (>= 0); returns the new time."""
        if ns < 0:
            raise ValueError("a clock does not go back")
        with self._lock:
            self._now_ns += ns
            return self._now_ns


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


class MarketState:
    """One market: its engine, ids, flow, and what its feed still has to send."""

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


class OrderRecord:
    """One order of a user as the venue keeps it (every order ever received, whatever its status)."""

    __slots__ = (
        "address",
        "api_key",
        "budget_usdc6",
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
        self,
        order_id: str,
        creds: ApiCreds,
        maker: str,
        m: MarketState,
        place: Place,
        po: PostOrder,
        now_s: int,
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
        self.budget_usdc6 = 0  # a market BUY's (FOK/FAK) pUSD budget, its ``original_size``
        self.matched_qty = 0
        self.status = "LIVE"
        self.order_type = po.order_type
        self.expiration_s = po.order.expiration_s if po.order_type == "GTD" else 0
        self.created_s = now_s
        self.trade_ids: list[str] = []
        self.taker_fills: list[tuple[Px, Qty]] = []


class TradeRecord:
    """One venue trade: a taker order matched against one or more maker orders."""

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
        "will_fail",
    )

    def __init__(
        self, trade_id: str, m: MarketState, legs: tuple[Trade, ...], match_ns: int, tx_hash: str
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
        self.will_fail = False  # ends FAILED instead of MINED/CONFIRMED


class Account:
    """One address's account: its orders, trades and heartbeat switch."""

    __slots__ = (
        "address",
        "adj_cash_usdc6",
        "adj_qty",
        "cash0",
        "fills",
        "hb_armed",
        "hb_count",
        "hb_id",
        "hb_last_ns",
        "live",
        "orders",
        "rejected",
        "trades",
    )

    def __init__(self, address: str, cash0: int) -> None:
        self.address = address
        self.cash0 = cash0
        self.orders: dict[str, OrderRecord] = {}  # every order, in arrival order
        self.live: dict[str, OrderRecord] = {}  # the LIVE ones, in arrival order
        self.rejected: list[dict[str, Any]] = []  # signed orders the venue refused, with the reason
        # What FAILED trades gave back, on top of the engines' balances: cash, and shares per token.
        self.adj_cash_usdc6 = 0
        self.adj_qty: dict[tuple[str, Outcome], int] = {}
        self.trades: list[tuple[TradeRecord, str]] = []  # (trade, "TAKER" | "MAKER")
        self.fills = 0
        self.hb_armed = False
        self.hb_count = 0  # heartbeats accepted
        self.hb_id = ""
        self.hb_last_ns = 0


def cancel_command(rec: OrderRecord) -> Command:
    """The engine command that cancels ``rec``."""
    return Cancel(market=rec.market.market, client_id=rec.id)


def int_param(text: str) -> int:
    """A query parameter that must be an integer (400 otherwise)."""
    try:
        return int(text)
    except ValueError:
        raise VenueError(400, f"not an integer: {text!r}") from None


class VenueState:
    """The state every venue layer reads and writes, and the lookups over it."""

    def __init__(self, scenario: Scenario, seed: int, clock: Clock) -> None:
        self.scenario = scenario
        self.seed = seed
        self.clock = clock
        self.lock = threading.RLock()
        self.start_ns = clock.now_ns()
        self.rng = random.Random(seed)
        self.faults = FaultInjector(scenario.faults, random.Random(self.rng.getrandbits(64)))
        self.limits = RateLimiter(scenario.rate_limits)
        # Settings the scenario starts with and ``/emulator/*`` controls may change at run time.
        self.hb_timeout_ms = scenario.heartbeat_timeout_ms
        self.mined_ms = scenario.trade_mined_ms
        self.confirmed_ms = scenario.trade_confirmed_ms
        self.fail_every_n = scenario.trade_failures.every_n
        self.fail_probability = scenario.trade_failures.probability
        self.fail_next = 0
        self._account_trades = 0  # trades with one of our accounts in them, for ``fail_every_n``
        # Its own stream, so failures never shift the flow's or the faults' draws.
        self._fail_rng = random.Random(hashlib.sha256(f"{seed}:trade-failures".encode()).digest())
        self._markets: list[MarketState] = []
        self._by_cid: dict[str, MarketState] = {}
        self._tokens: dict[str, tuple[MarketState, Outcome]] = {}
        for i, cfg in enumerate(scenario.markets):
            m = MarketState(cfg, str(900_001 + i), self.start_ns)
            if m.market in self._by_cid or m.yes in self._tokens or m.no in self._tokens or m.yes == m.no:
                raise ValueError(f"markets[{i}] ({cfg.slug}): condition or token id used twice")
            self._markets.append(m)
            self._by_cid[m.market] = m
            self._tokens[m.yes] = (m, Outcome.YES)
            self._tokens[m.no] = (m, Outcome.NO)
        self._users: dict[str, Account] = {}
        self._orders: dict[str, OrderRecord] = {}
        self._trade_seq = 0
        self._trades_by_id: dict[str, TradeRecord] = {}
        self._hb_seq = 0
        self._take_seq = 0
        self._status_heap: list[tuple[int, int, str, TradeRecord]] = []
        self._requests: dict[str, Counter[str]] = {}

    # --- lookups -----------------------------------------------------------------------------------

    def now_ns(self) -> int:
        """The venue's clock."""
        return self.clock.now_ns()

    def elapsed_ms(self, now_ns: int | None = None) -> int:
        """Milliseconds since the venue started (fault windows are in these)."""
        return ((self.clock.now_ns() if now_ns is None else now_ns) - self.start_ns) // NS_PER_MS

    def _find(self, token_id: str) -> tuple[MarketState, Outcome]:
        found = self._tokens.get(token_id)
        if found is None:
            raise VenueError(404, "No orderbook exists for the requested token id")
        return found

    def _market(self, key: str) -> MarketState:
        m = self._by_cid.get(key) or next((x for x in self._markets if x.cfg.slug == key), None)
        if m is None:
            raise VenueError(404, f"market {key!r} not found")
        return m

    def market_ids(self) -> list[dict[str, str]]:
        """``{slug, version, market, yes_token, no_token}`` of every market (a v2 market's tokens are
        its position ids)."""
        with self.lock:
            return [
                {
                    "slug": m.cfg.slug,
                    "version": m.cfg.version,
                    "market": m.market,
                    "yes_token": m.yes,
                    "no_token": m.no,
                }
                for m in self._markets
            ]

    def _user(self, address: str) -> Account:
        key = address.lower()
        user = self._users.get(key)
        if user is None:
            acct = self.scenario.account
            # Each split of shares_qty YES+NO pairs is funded with what it costs: 1 USDC a pair.
            cash0 = acct.cash_usdc6 + len(self._markets) * acct.shares_qty * SETTLE_PER_QTY_USDC6
            user = self._users[key] = Account(address, cash0)
            if acct.shares_qty:
                for m in self._markets:
                    m.engine.split(address, acct.shares_qty)
        return user
