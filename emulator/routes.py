"""The emulator's REST routes: the CLOB API, Gamma and the ``/emulator/*`` controls.

``RestRoutes.handle`` serves one request: it counts order requests per claimed address, applies the
scenario's request faults (latency, statuses) except on ``/emulator/*``, authenticates, calls the
venue and maps its errors to statuses. It never raises: an unexpected error is logged and answered
500.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec

from core.ports import Clock
from core.units import NS_PER_S, QTY_ONE, Side, format_px, parse_px, parse_qty, parse_tick
from emulator.auth import ApiCreds, AuthError, KeyStore, recover_l1_address
from emulator.gamma import events_json, filter_markets, market_json
from emulator.http import Response, q1
from emulator.orders import OrderError, PostOrder, decode_post_order
from emulator.scenario import Scenario
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


def _decode(body: bytes) -> Any:
    if not body:
        return None
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise VenueError(400, "Invalid payload: not JSON") from None


class RestRoutes:
    """The REST half of the emulator (mixed into ``Emulator``, which sets these attributes)."""

    scenario: Scenario
    clock: Clock
    venue: Venue
    keys: KeyStore
    _routes: dict[tuple[str, str], Callable[..., tuple[int, Any]]]

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
                with contextlib.suppress(msgspec.DecodeError):
                    raw = msgspec.json.decode(body)
                    n = len(raw) if isinstance(raw, list) else 0
            venue.count_request(headers.get("poly_address", ""), kind, n)
        if not path.startswith("/emulator/"):
            now_ms = venue.elapsed_ms()
            delay = venue.faults.latency_s(method, path, now_ms)
            if delay:
                time.sleep(delay)
            fault = venue.faults.http_fault(method, path, now_ms)
            if fault is not None:
                extra = {"Retry-After": str(fault.retry_after_s)} if fault.status == 429 else {}
                return Response(
                    fault.status, {"error": fault.message or _FAULT_TEXT.get(fault.status, "error")}, extra
                )
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
        return Response(status, payload)

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
            ("DELETE", "/cancel-all"): lambda q, h, b: (
                200,
                v.cancel_all(self._l2(h, "DELETE", "/cancel-all", b)),
            ),
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
            ("GET", "/order-scoring"): lambda q, h, b: (
                self._authed(h, "GET", "/order-scoring", b),
                {"scoring": False},
            ),
            ("POST", "/orders-scoring"): lambda q, h, b: (
                self._authed(h, "POST", "/orders-scoring", b),
                dict.fromkeys(_list(_decode(b)), False),
            ),
            ("GET", "/emulator/status"): lambda q, h, b: (200, self.status()),
            ("POST", "/emulator/take"): self._take,
            ("POST", "/emulator/tick"): self._set_tick,
            ("GET", "/gamma/markets"): self._gamma_markets,
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
                case "data" if rest.startswith("order/"):
                    creds = self._l2(headers, method, path, body)
                    return 200, v.order(creds, rest.removeprefix("order/"))
                case "gamma" if rest.startswith("markets/"):
                    key = rest.removeprefix("markets/")
                    found = [
                        market_json(m)
                        for m in v.gamma_markets()
                        if key in (m.gamma_id, m.slug, m.condition_id)
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
        return 200, self.venue.cancel(creds, [oid])

    def _cancel_orders(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        creds = self._l2(h, "DELETE", "/orders", b)
        raw = _decode(b)
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise VenueError(400, "Invalid payload: expected a JSON array of order ids")
        if len(raw) > 1000:
            raise VenueError(400, f"Too many order ids in payload: {len(raw)}, max allowed: 1000")
        return 200, self.venue.cancel(creds, raw)

    def _cancel_market(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        creds = self._l2(h, "DELETE", "/cancel-market-orders", b)
        raw = _decode(b) or {}
        if not isinstance(raw, dict):
            raise VenueError(400, "Invalid payload: expected {market, asset_id}")
        return 200, self.venue.cancel_market(
            creds, str(raw.get("market") or ""), str(raw.get("asset_id") or "")
        )

    def _heartbeat(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        creds = self._l2(h, "POST", "/v1/heartbeats", b)
        raw = _decode(b) or {}
        hb = raw.get("heartbeat_id") if isinstance(raw, dict) else None
        return 200, self.venue.heartbeat(creds, hb if isinstance(hb, str) else None)

    def _take(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        raw = _decode(b)
        if not isinstance(raw, dict):
            raise VenueError(400, 'expected {"market", "side", "size"[, "price"]}')
        side = Side.BUY if str(raw.get("side", "")).upper() == "BUY" else Side.SELL
        try:
            qty = parse_qty(str(raw.get("size", "")))
            px = parse_px(str(raw["price"])) if raw.get("price") is not None else None
        except ValueError as exc:
            raise VenueError(400, str(exc)) from None
        report = self.venue.take(str(raw.get("market", "")), side, qty, px)
        return 200, {"trades": len(report.trades), "filled": sum(t.qty for t in report.trades) / QTY_ONE}

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

    def _gamma_events(self, q: Mapping[str, list[str]], h: Mapping[str, str], b: bytes) -> tuple[int, Any]:
        wanted = set(q.get("id", ()))
        events = events_json(self.venue.gamma_markets())
        return 200, [e for e in events if not wanted or e["id"] in wanted]


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
