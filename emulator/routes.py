"""The emulator's REST routes: the CLOB API, Gamma and the ``/emulator/*`` controls.

``RestRoutes.handle`` serves one request: it counts order requests per claimed address, applies the
scenario's request faults (latency, statuses) except on ``/emulator/*``, authenticates, calls the
venue and maps its errors to statuses. It never raises: an unexpected error is logged and answered
500.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec

from core.ports import Clock
from core.units import (
    NS_PER_MS,
    NS_PER_S,
    QTY_ONE,
    Side,
    UnitError,
    format_px,
    format_qty,
    parse_px,
    parse_qty,
    parse_tick,
    parse_usdc6,
)
from emulator.auth import ApiCreds, AuthError, KeyStore, recover_l1_address
from emulator.chain import Chain
from emulator.gamma import events_json, filter_markets, keyset_page, market_json
from emulator.http import Response, q1
from emulator.orders import OrderError, PostOrder, decode_post_order
from emulator.ratelimit import Bucket
from emulator.rewards import check_day
from emulator.scenario import FaultRule, Scenario
from emulator.venue import Venue, VenueError

__all__ = ["RestRoutes"]

logger = logging.getLogger("emulator.server")

#: Order requests counted per claimed address (``GET /emulator/status``).
_ORDER_REQUESTS: Final = {
    ("POST", "/order"): "post_order",
    ("POST", "/orders"): "post_orders",
    ("DELETE", "/order"): "cancel_order",
    ("DELETE", "/orders"): "cancel_orders",
    ("DELETE", "/cancel-all"): "cancel_all",
    ("DELETE", "/cancel-market-orders"): "cancel_market_orders",
}

_FAULT_TEXT: Final = {
    425: "the matching engine is restarting, try again later",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Trading is currently disabled",
}


#: Deepest JSON nesting accepted in a request body (an order is 2 deep, a batch 3).
MAX_JSON_DEPTH: Final = 32
_OPENERS: Final = frozenset(b"[{")


def _json_depth(body: bytes) -> int:
    # Maximum nesting of arrays and objects outside strings, without recursion.
    depth = deepest = 0
    in_str = escaped = False
    for byte in body:
        if in_str:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_str = False
        elif byte == 0x22:
            in_str = True
        elif byte in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _decode(body: bytes) -> Any:
    """A request body as JSON; anything else (or too deep, or numbers out of range) is a 400.

    Depth is checked before decoding, so the decoder's recursion never depends on the process's
    recursion limit (which imported libraries may raise).
    """
    if not body:
        return None
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _json_depth(body) > MAX_JSON_DEPTH:
        raise VenueError(400, f"Invalid payload: JSON nested deeper than {MAX_JSON_DEPTH}")
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError, ValueError):
        raise VenueError(400, "Invalid payload: not JSON") from None


def _batch_len(body: bytes) -> int:
    # Orders in a POST /orders body, for the counters (0 when it is not a JSON array).
    try:
        raw = _decode(body)
    except VenueError:
        return 0
    return len(raw) if isinstance(raw, list) else 0


class RestRoutes:
    """The REST half of the emulator (mixed into ``Emulator``, which sets these attributes)."""

    scenario: Scenario
    clock: Clock
    venue: Venue
    keys: KeyStore
    chain: Chain
    _routes: dict[tuple[str, str], Callable[..., tuple[int, Any]]]
    #: Headers a handler adds to its reply (rate-limit headers), per serving thread.
    _reply_headers: threading.local

    def _limit(self, creds: ApiCreds, bucket: Bucket, cost: int) -> None:
        """Charge ``cost`` tokens of ``creds``' bucket; the reply carries the headers, a refusal is 429."""
        decision = self.venue.limits.charge(creds.address, bucket, cost, self.venue.now_ns())
        if decision is None:
            return
        self._reply_headers.extra = decision.headers
        if not decision.allowed:
            tier = decision.headers["Poly-RateLimit-Tier"]
            raise VenueError(
                429,
                f"Too Many Requests: {bucket} rate limit of tier {tier} exceeded (this request costs {cost})",
            )

    def status(self) -> dict[str, Any]:
        """What ``GET /emulator/status`` serves."""
        raise NotImplementedError

    def handle(
        self, method: str, path: str, query: Mapping[str, list[str]], headers: Mapping[str, str], body: bytes
    ) -> Response:
        """Serve one REST request (see the module docstring)."""
        venue = self.venue
        kind = _ORDER_REQUESTS.get((method, path))
        if kind is not None:
            n = 1 if kind == "post_order" else 0
            if kind == "post_orders":
                n = _batch_len(body)
            venue.count_request(headers.get("poly_address", ""), kind, n)
        if not path.startswith("/emulator/"):
            now_ms = venue.elapsed_ms()
            delay = venue.faults.latency_s(method, path, now_ms)
            if delay:
                time.sleep(delay)
            fault = venue.faults.http_fault(method, path, now_ms)
            if fault is not None:
                extra = {"Retry-After": str(fault.retry_after_s)} if fault.status == 429 else {}
                reply = {"error": fault.message or _FAULT_TEXT.get(fault.status, "error")}
                if fault.code:
                    reply["code"] = fault.code
                return Response(fault.status, reply, extra)
        self._reply_headers.extra = {}
        try:
            status, payload = self.route(method, path, query, headers, body)
        except VenueError as exc:
            status, payload = exc.status, exc.body
        except AuthError as exc:
            status, payload = exc.status, {"error": str(exc)}
        except OrderError as exc:
            status, payload = 400, {"error": str(exc)}
        except Exception:
            logger.exception("emulator: %s %s failed", method, path)
            status, payload = 500, {"error": "internal error"}
        added: dict[str, str] = self._reply_headers.extra
        return Response(status, payload, added)

    # --- REST routing ---------------------------------------------------------------------------------

    def _now_s(self) -> int:
        return self.clock.now_ns() // NS_PER_S

    def _l2(self, headers: Mapping[str, str], method: str, path: str, body: bytes) -> ApiCreds:
        return self.keys.verify_l2(
            headers, method, path, body, now_s=self._now_s(), max_skew_s=self.scenario.auth_max_skew_s
        )

    def _authed(self, headers: Mapping[str, str], method: str, path: str, body: bytes) -> int:
        # For routes that only need the caller to be authenticated: 200 once L2 checks out.
        self._l2(headers, method, path, body)
        return 200

    def _build_routes(self) -> dict[tuple[str, str], Callable[..., tuple[int, Any]]]:
        v = self.venue
        return {
            ("GET", "/"): lambda q, h, b: (200, "OK"),
            ("GET", "/ok"): lambda q, h, b: (200, "OK"),
            ("GET", "/time"): lambda q, h, b: (200, self._now_s()),
            ("GET", "/version"): lambda q, h, b: (200, {"version": self.scenario.order_version}),
            ("POST", "/auth/api-key"): self._create_key,
            ("GET", "/auth/derive-api-key"): self._derive_key,
            ("GET", "/auth/api-keys"): lambda q, h, b: (
                200,
                {"apiKeys": list(self.keys.keys_of(self._l2(h, "GET", "/auth/api-keys", b).address))},
            ),
            ("GET", "/auth/ban-status/closed-only"): lambda q, h, b: (
                self._authed(h, "GET", "/auth/ban-status/closed-only", b),
                {"closed_only": False},
            ),
            ("GET", "/book"): lambda q, h, b: (200, v.book(q1(q, "token_id"))),
            ("POST", "/books"): lambda q, h, b: (200, [v.book(_token(x)) for x in _list(_decode(b))]),
            ("GET", "/midpoint"): lambda q, h, b: (200, {"mid": v.midpoint(q1(q, "token_id"))}),
            ("POST", "/midpoints"): lambda q, h, b: (
                200,
                {_token(x): v.midpoint(_token(x)) for x in _list(_decode(b))},
            ),
            ("GET", "/price"): lambda q, h, b: (200, {"price": v.price(q1(q, "token_id"), q1(q, "side"))}),
            ("POST", "/prices"): self._prices,
            ("GET", "/spread"): lambda q, h, b: (200, {"spread": v.spread(q1(q, "token_id"))}),
            ("POST", "/spreads"): lambda q, h, b: (
                200,
                {_token(x): v.spread(_token(x)) for x in _list(_decode(b))},
            ),
            ("GET", "/last-trade-price"): lambda q, h, b: (200, v.last_trade_price(q1(q, "token_id"))),
            ("POST", "/last-trades-prices"): lambda q, h, b: (
                200,
                [{"token_id": _token(x), **v.last_trade_price(_token(x))} for x in _list(_decode(b))],
            ),
            ("GET", "/tick-size"): lambda q, h, b: (
                200,
                {"minimum_tick_size": float(format_px(v.tick_size(q1(q, "token_id"))))},
            ),
            ("GET", "/neg-risk"): lambda q, h, b: (200, {"neg_risk": v.token_info(q1(q, "token_id"))[1]}),
            ("GET", "/fee-rate"): lambda q, h, b: (
                200,
                {"base_fee": 1000 if v.token_info(q1(q, "token_id"))[2] else 0},
            ),
            ("GET", "/markets"): lambda q, h, b: (200, _one_page(v.clob_markets())),
            ("GET", "/sampling-markets"): lambda q, h, b: (200, _one_page(v.clob_markets())),
            ("GET", "/simplified-markets"): lambda q, h, b: (
                200,
                _one_page([_simplified(m) for m in v.clob_markets()]),
            ),
            ("GET", "/sampling-simplified-markets"): lambda q, h, b: (
                200,
                _one_page([_simplified(m) for m in v.clob_markets()]),
            ),
            ("POST", "/order"): self._post_order,
            ("POST", "/orders"): self._post_orders,
            ("DELETE", "/order"): self._cancel_order,
            ("DELETE", "/orders"): self._cancel_orders,
            ("DELETE", "/cancel-all"): self._cancel_all,
            ("DELETE", "/cancel-market-orders"): self._cancel_market,
            ("GET", "/data/orders"): lambda q, h, b: (
                200,
                v.open_orders(self._l2(h, "GET", "/data/orders", b), _flat(q), q1(q, "next_cursor")),
            ),
            ("GET", "/data/trades"): lambda q, h, b: (
                200,
                v.trades(self._l2(h, "GET", "/data/trades", b), _flat(q), q1(q, "next_cursor")),
            ),
            ("GET", "/balance-allowance"): lambda q, h, b: (
                200,
                v.balance_allowance(
                    self._l2(h, "GET", "/balance-allowance", b), q1(q, "asset_type"), q1(q, "token_id")
                ),
            ),
            ("GET", "/balance-allowance/update"): lambda q, h, b: (
                self._authed(h, "GET", "/balance-allowance/update", b),
                {},
            ),
            ("POST", "/v1/heartbeats"): self._heartbeat,
            ("POST", "/heartbeats"): lambda q, h, b: (
                200,
                self.venue.legacy_heartbeat(self._l2(h, "POST", "/heartbeats", b)),
            ),
            ("GET", "/order-scoring"): self._order_scoring,
            ("POST", "/orders-scoring"): self._orders_scoring,
            ("GET", "/rewards/markets/current"): lambda q, h, b: (200, v.reward_listing("current")),
            ("GET", "/rewards/user"): self._user_rewards("user", "/rewards/user"),
            ("GET", "/rewards/user/total"): self._user_rewards("total", "/rewards/user/total"),
            ("GET", "/rewards/user/markets"): self._user_rewards("user_markets", "/rewards/user/markets"),
            ("GET", "/emulator/status"): lambda q, h, b: (200, self.status()),
            ("POST", "/emulator/take"): self._take,
            ("GET", "/emulator/orders"): lambda q, h, b: (200, v.account_orders(_address(q))),
            ("GET", "/emulator/trades"): lambda q, h, b: (200, v.account_trades(_address(q))),
            ("GET", "/emulator/faults"): lambda q, h, b: (200, v.faults.rules()),
            ("POST", "/emulator/faults"): self._add_fault,
            ("DELETE", "/emulator/faults"): self._remove_faults,
            ("GET", "/emulator/rate-limits"): lambda q, h, b: (200, v.limits.state()),
            ("POST", "/emulator/rate-limits"): self._rate_limits,
            ("POST", "/emulator/fail-trades"): self._fail_trades,
            ("GET", "/emulator/settings"): lambda q, h, b: (200, v.configure()),
            ("POST", "/emulator/settings"): self._settings,
            ("POST", "/emulator/clock"): self._advance_clock,
            ("GET", "/data-api/v2/positions"): self._positions,
            ("POST", "/emulator/tick"): self._set_tick,
            ("POST", "/rpc"): lambda q, h, b: (200, self.chain.handle(_decode(b))),
            ("GET", "/gamma/markets"): self._gamma_markets,
            ("GET", "/gamma/markets/keyset"): self._gamma_keyset,
            ("GET", "/gamma/events"): self._gamma_events,
        }

    def route(
        self, method: str, path: str, query: Mapping[str, list[str]], headers: Mapping[str, str], body: bytes
    ) -> tuple[int, Any]:
        """Serve one REST request; returns ``(status, JSON value)`` (raises ``VenueError``/``AuthError``)."""
        handler = self._routes.get((method, path))
        if handler is not None:
            return handler(query, headers, body)
        v = self.venue
        head, _, rest = path.lstrip("/").partition("/")
        if method == "GET" and rest:
            match head:
                case "markets":
                    return 200, v.clob_market(rest)
                case "clob-markets":
                    return 200, v.clob_market_info(rest)
                case "markets-by-token":
                    cid, _, _ = v.token_info(rest)
                    return 200, {"condition_id": cid}
                case "tick-size":
                    return 200, {"minimum_tick_size": float(format_px(v.tick_size(rest)))}
                case "rewards" if rest.startswith("markets/"):
                    return 200, v.reward_listing("market", cid=rest.removeprefix("markets/"))
                case "data" if rest.startswith("order/"):
                    creds = self._l2(headers, method, path, body)
                    return 200, v.order(creds, rest.removeprefix("order/"))
                case "gamma" if rest.startswith("markets/"):
                    # ``/markets/slug/<slug>`` (the official client's) or ``/markets/<id|slug|cid>``.
                    key = rest.removeprefix("markets/")
                    by_slug = key.startswith("slug/")
                    key = key.removeprefix("slug/") if by_slug else key
                    found = [
                        market_json(m)
                        for m in v.gamma_markets()
                        if (key == m.slug if by_slug else key in (m.gamma_id, m.slug, m.condition_id))
                    ]
                    if not found:
                        raise VenueError(404, "market not found")
                    return 200, found[0]
        raise VenueError(404, f"no route for {method} {path}")

    def _create_key(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        address, nonce = recover_l1_address(h, now_s=self._now_s(), max_skew_s=self.scenario.auth_max_skew_s)
        creds = self.keys.create(address, nonce)
        if creds is None:
            return 400, {"error": "Could not create api key"}
        self.venue.register(creds)
        return 200, {"apiKey": creds.api_key, "secret": creds.secret, "passphrase": creds.passphrase}

    def _derive_key(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        address, nonce = recover_l1_address(h, now_s=self._now_s(), max_skew_s=self.scenario.auth_max_skew_s)
        creds = self.keys.derive(address, nonce)
        self.venue.register(creds)
        return 200, {"apiKey": creds.api_key, "secret": creds.secret, "passphrase": creds.passphrase}

    def _prices(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        out: dict[str, dict[str, str]] = {}
        for x in _list(_decode(b)):
            token = _token(x)
            sides = [str(x.get("side"))] if isinstance(x, dict) and x.get("side") else ["BUY", "SELL"]
            for side in sides:
                with contextlib.suppress(VenueError):
                    out.setdefault(token, {})[side.upper()] = self.venue.price(token, side)
        return 200, out

    def _post_order(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        creds = self._l2(h, "POST", "/order", b)
        self._limit(creds, "orders", 1)
        po = decode_post_order(_decode(b))
        rule = self.venue.faults.reject("POST", "/order", self.venue.elapsed_ms())
        result = self.venue.place(creds, [po], [rule])[0]
        if result.http_status != 200:
            return result.http_status, {
                "error": result.reply.get("errorMsg") or result.reply.get("error", "")
            }
        return 200, result.reply

    def _post_orders(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        creds = self._l2(h, "POST", "/orders", b)
        raw = _decode(b)
        if not isinstance(raw, list):
            raise VenueError(400, "Invalid payload: expected a JSON array of orders")
        if len(raw) > self.scenario.max_batch:
            raise VenueError(
                400, f"Too many orders in payload: {len(raw)}, max allowed: {self.scenario.max_batch}"
            )
        self._limit(creds, "orders", len(raw))
        orders: list[PostOrder | None] = []
        errors: dict[int, str] = {}
        for i, x in enumerate(raw):
            try:
                orders.append(decode_post_order(x))
            except OrderError as exc:
                orders.append(None)
                errors[i] = str(exc)
        now_ms = self.venue.elapsed_ms()
        valid = [po for po in orders if po is not None]
        rules = [self.venue.faults.reject("POST", "/orders", now_ms) for _ in valid]
        results = iter(self.venue.place(creds, valid, rules))
        replies: list[dict[str, Any]] = []
        for i, po in enumerate(orders):
            if po is None:
                replies.append(
                    {
                        "success": False,
                        "errorMsg": errors[i],
                        "orderID": "",
                        "status": "",
                        "makingAmount": "",
                        "takingAmount": "",
                        "transactionsHashes": [],
                        "tradeIDs": [],
                    }
                )
                continue
            reply = next(results).reply
            if "error" in reply:
                reply = {
                    "success": False,
                    "errorMsg": reply["error"],
                    "orderID": "",
                    "status": "",
                    "makingAmount": "",
                    "takingAmount": "",
                    "transactionsHashes": [],
                    "tradeIDs": [],
                }
            replies.append(reply)
        return 200, replies

    def _cancel_order(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        creds = self._l2(h, "DELETE", "/order", b)
        raw = _decode(b)
        oid = raw.get("orderID") or raw.get("orderId") if isinstance(raw, dict) else None
        if not isinstance(oid, str) or not oid:
            raise VenueError(400, "Invalid payload: orderID is required")
        self._limit(creds, "cancels", 1)
        return 200, self.venue.cancel(creds, [oid])

    def _cancel_orders(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        creds = self._l2(h, "DELETE", "/orders", b)
        raw = _decode(b)
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise VenueError(400, "Invalid payload: expected a JSON array of order ids")
        if len(raw) > 1000:
            raise VenueError(400, f"Too many order ids in payload: {len(raw)}, max allowed: 1000")
        self._limit(creds, "cancels", len(raw))
        return 200, self.venue.cancel(creds, raw)

    def _cancel_market(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        creds = self._l2(h, "DELETE", "/cancel-market-orders", b)
        raw = _decode(b) or {}
        if not isinstance(raw, dict):
            raise VenueError(400, "Invalid payload: expected {market, asset_id}")
        market, asset_id = str(raw.get("market") or ""), str(raw.get("asset_id") or "")
        with self.venue.lock:  # the cost is 1 + what it cancels: count and cancel in one go
            self._limit(creds, "cancels", 1 + self.venue.count_open(creds, market, asset_id))
            return 200, self.venue.cancel_market(creds, market, asset_id)

    def _cancel_all(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        creds = self._l2(h, "DELETE", "/cancel-all", b)
        with self.venue.lock:
            self._limit(creds, "cancels", 1 + self.venue.count_open(creds))
            return 200, self.venue.cancel_all(creds)

    def _heartbeat(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        creds = self._l2(h, "POST", "/v1/heartbeats", b)
        raw = _decode(b) or {}
        if not isinstance(raw, dict):
            raise VenueError(400, 'Invalid payload: expected {"heartbeat_id": ...}')
        hb = raw.get("heartbeat_id")
        if hb is not None and not isinstance(hb, str):
            raise VenueError(400, "Invalid payload: heartbeat_id must be a string")
        return 200, self.venue.heartbeat(creds, hb)

    def _order_scoring(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        creds = self._l2(h, "GET", "/order-scoring", b)
        oid = q1(q, "order_id")
        if not oid:
            raise VenueError(400, "order_id is required")
        return 200, {"scoring": self.venue.order_scoring(creds, [oid])[oid]}

    def _orders_scoring(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        creds = self._l2(h, "POST", "/orders-scoring", b)
        ids = _list(_decode(b))
        if not all(isinstance(x, str) and x for x in ids):
            raise VenueError(400, "Invalid payload: expected a JSON array of order ids")
        if len(ids) > _MAX_SCORING_IDS:
            raise VenueError(
                400, f"Too many order ids in payload: {len(ids)}, max allowed: {_MAX_SCORING_IDS}"
            )
        return 200, self.venue.order_scoring(creds, ids)

    def _user_rewards(self, what: str, path: str) -> Callable[..., tuple[int, Any]]:
        # ``GET /rewards/user[/total|/markets]?date=YYYY-MM-DD``: the account's earnings of that UTC day.
        def handle(q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
            creds = self._l2(h, "GET", path, b)
            day = check_day(q1(q, "date"))
            return 200, self.venue.reward_listing(what, creds, day=day)

        return handle

    def _take(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        raw = _decode(b)
        if not isinstance(raw, dict):
            raise VenueError(400, 'expected {"market", "side", "size"[, "price"]}')
        side = Side.BUY if str(raw.get("side", "")).upper() == "BUY" else Side.SELL
        try:
            amount = parse_usdc6(str(raw["amount"])) if raw.get("amount") is not None else 0
            qty = 0 if amount else parse_qty(str(raw.get("size", "")))
            px = parse_px(str(raw["price"])) if raw.get("price") is not None else None
        except (ValueError, UnitError) as exc:
            raise VenueError(400, f"bad take: {exc}") from None
        if amount <= 0 and qty <= 0:
            raise VenueError(400, "bad take: size (shares) or amount (pUSD, BUY only) must be positive")
        if qty > _MAX_TAKE_QTY or amount > _MAX_TAKE_QTY:
            raise VenueError(400, "bad take: size or amount beyond 1e9")
        report = self.venue.take(str(raw.get("market", "")), side, qty, px, amount_usdc6=amount)
        filled = sum(t.qty for t in report.trades)
        return 200, {
            "trades": len(report.trades),
            "filled": filled / QTY_ONE,
            "filled_size": format_qty(filled),
        }

    # --- run-time controls (/emulator/*) ---------------------------------------------------------------

    def _positions(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        user = q1(q, "user")
        if not user:
            raise VenueError(400, "user is required")
        cids = [c for c in q1(q, "condition_id").split(",") if c]
        try:
            limit = int(q1(q, "limit") or 100)
            start = int(base64.b64decode(q1(q, "cursor")).decode()) if q1(q, "cursor") else 0
        except ValueError:
            raise VenueError(400, "limit must be an integer and cursor one this API gave") from None
        if not 1 <= limit <= 1000 or start < 0:
            raise VenueError(400, "limit must be in [1, 1000]")
        rows = self.venue.positions(user, cids)
        page = rows[start : start + limit]
        more = start + limit < len(rows)
        cursor = base64.b64encode(str(start + limit).encode()).decode() if more else None
        return 200, {"data": page, "pagination": {"has_more": more, "next_cursor": cursor}}

    def _add_fault(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        try:
            rule = msgspec.convert(_decode(b), FaultRule)
        except (msgspec.ValidationError, ValueError) as exc:
            raise VenueError(400, f"bad fault rule: {exc}") from None
        rule_id = self.venue.faults.add(rule, self.venue.elapsed_ms())
        return 200, {"id": rule_id}

    def _remove_faults(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        text = q1(q, "id")
        if text and not text.isdigit():
            raise VenueError(400, "id must be a fault rule id")
        return 200, {"removed": self.venue.faults.remove(int(text) if text else None)}

    def _rate_limits(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        raw = _decode(b) or {}
        if not isinstance(raw, dict) or set(raw) - _RATE_LIMIT_KEYS:
            raise VenueError(400, f"expected an object with some of {sorted(_RATE_LIMIT_KEYS)}")
        accounts = raw.get("accounts", {})
        enabled, mode, tier = raw.get("enabled"), raw.get("mode"), raw.get("default_tier")
        retry = raw.get("retry_after_s", "keep")
        drain = raw.get("drain", [])
        if (
            not isinstance(drain, list)
            or not all(isinstance(x, str) for x in drain)
            or not isinstance(accounts, dict)
            or not all(isinstance(k, str) and isinstance(x, str) for k, x in accounts.items())
            or (enabled is not None and not isinstance(enabled, bool))
            or mode not in (None, "enforce", "warn")
            or (tier is not None and not isinstance(tier, str))
            or not (retry in ("keep", None) or (type(retry) is int and 0 <= retry <= 86_400))
        ):
            raise VenueError(400, "bad rate-limit settings (see docs/emulator.md)")
        try:
            self.venue.limits.configure(
                enabled=enabled,
                mode=mode,
                default_tier=tier,
                retry_after_s=retry,
                account_tiers=accounts,
                drain=tuple(drain),
                now_ns=self.venue.now_ns(),
            )
        except ValueError as exc:
            raise VenueError(400, str(exc)) from None
        return 200, self.venue.limits.state()

    def _fail_trades(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        raw = _decode(b)
        if not isinstance(raw, dict) or not raw or set(raw) - {"trade_ids", "next", "every_n", "probability"}:
            raise VenueError(
                400, 'expected {"trade_ids": [...]} or {"next": N} or {"every_n": N} or {"probability": p}'
            )
        out: dict[str, Any] = {}
        ids = raw.get("trade_ids", [])
        if not isinstance(ids, list) or not all(isinstance(x, str) for x in ids):
            raise VenueError(400, "trade_ids must be a list of trade ids")
        for key in ("next", "every_n"):
            if key in raw and (type(raw[key]) is not int or not 0 <= raw[key] <= 1_000_000):
                raise VenueError(400, f"{key} must be an integer in [0, 1000000]")
        p = raw.get("probability")
        if p is not None and (type(p) not in (int, float) or not 0 <= p <= 1):
            raise VenueError(400, "probability must be in [0, 1]")
        if ids:
            out.update(self.venue.fail_trades(ids))
        settings = self.venue.configure(
            fail_next=raw.get("next"), fail_every_n=raw.get("every_n"), fail_probability=p
        )
        return 200, {**out, **settings}

    def _settings(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        raw = _decode(b) or {}
        keys = {"heartbeat_timeout_ms", "trade_mined_ms", "trade_confirmed_ms"}
        if not isinstance(raw, dict) or set(raw) - keys:
            raise VenueError(400, f"expected an object with some of {sorted(keys)}")
        for k, x in raw.items():
            if type(x) is not int or not 1 <= x <= 86_400_000:
                raise VenueError(400, f"{k} must be an integer number of ms in [1, 86400000]")
        return 200, self.venue.configure(**raw)

    def _advance_clock(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        raw = _decode(b)
        advance = getattr(self.clock, "advance", None)
        if advance is None:
            raise VenueError(400, "the emulator runs on the wall clock (start it with a ManualClock)")
        ms = raw.get("advance_ms") if isinstance(raw, dict) else None
        if type(ms) is not int or not 0 <= ms <= 86_400_000:
            raise VenueError(400, 'expected {"advance_ms": N} with N in [0, 86400000]')
        advance(ms * NS_PER_MS)
        self.venue.step()
        return 200, {"now_ms": self.clock.now_ns() // NS_PER_MS, "elapsed_ms": self.venue.elapsed_ms()}

    def _set_tick(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        raw = _decode(b)
        if not isinstance(raw, dict):
            raise VenueError(400, 'expected {"market", "tick_size"}')
        try:
            tick = parse_tick(str(raw.get("tick_size", "")))
            self.venue.set_tick(str(raw.get("market", "")), tick)
        except ValueError as exc:
            raise VenueError(400, str(exc)) from None
        return 200, {"tick_size": format_px(tick)}

    def _gamma_markets(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        page = filter_markets(self.venue.gamma_markets(), q)
        if page is None:
            return 422, {"error": "offset is past the end of the listing"}
        return 200, page

    def _gamma_keyset(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        page = keyset_page(self.venue.gamma_markets(), q)
        if page is None:
            return 400, {"error": "keyset pages take after_cursor (a next_cursor they gave), not offset"}
        return 200, page

    def _gamma_events(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        wanted = set(q.get("id", ()))
        events = events_json(self.venue.gamma_markets())
        return 200, [e for e in events if not wanted or e["id"] in wanted]


#: Most ids one ``POST /orders-scoring`` takes (the venue's limit is not documented; DELETE /orders' 1000).
_MAX_SCORING_IDS: Final = 1000
#: Largest size (shares) or amount (pUSD) ``/emulator/take`` takes, in 1e-6 units.
_MAX_TAKE_QTY: Final = 10**9 * QTY_ONE
_RATE_LIMIT_KEYS: Final = frozenset(("enabled", "mode", "default_tier", "retry_after_s", "accounts", "drain"))


def _address(query: Mapping[str, list[str]]) -> str:
    address = q1(query, "address")
    if not address:
        raise VenueError(400, "address is required")
    return address


def _list(raw: Any) -> list[Any]:
    if not isinstance(raw, list):
        raise VenueError(400, "Invalid payload: expected a JSON array")
    return raw


def _token(x: Any) -> str:
    if isinstance(x, dict) and x.get("token_id"):
        return str(x["token_id"])
    raise VenueError(400, "Invalid payload: every item needs a token_id")


def _flat(query: Mapping[str, list[str]]) -> dict[str, str]:
    return {k: v[-1] for k, v in query.items() if v}


def _one_page(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"data": items, "next_cursor": "LTE=", "limit": len(items), "count": len(items)}


def _simplified(m: dict[str, Any]) -> dict[str, Any]:
    keys = ("condition_id", "rewards", "tokens", "active", "closed", "archived", "accepting_orders")
    return {k: m[k] for k in keys}
