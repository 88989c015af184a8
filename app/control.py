"""The control plane of a running bot: a small HTTP API on 127.0.0.1 with a bearer token.

``run-market-maker`` starts it next to the engine (``ops.control_port``; 0 picks a free port, null
turns it off). It is served by a thread of its own (``http.server.ThreadingHTTPServer``, a thread
per request), never by the trading thread: a request reads the risk manager's view and asks each
market actor for its status (one message each, as the status line does), and commands go to the risk
actor, which tells the markets their new trading state.

At start, in the run's directory (``adapters.runlog``):

* ``control.token``: a random bearer token (256 bits), file mode 0600, created before the server
  listens; its ``token_id`` (the first 12 hex digits of its sha256) names who sent a command;
* ``control.json``: where the API is (``url``), the metrics endpoint (``metrics_url``), the pid and
  the token's file and id; removed at a clean exit (a kill -9 leaves it, with a pid that is gone).

Every request needs ``Authorization: Bearer <token>``; none or a wrong one is refused with 401 and
recorded (``control_refused``). Each command is recorded in the run's event log (``control``: the
command, its market, the token id, the result) with its time, and each read (``status``,
``positions``) as ``control_read`` (the request and the token id) with its time. Requests (JSON in,
JSON out; integer units as in the event log: ``*_qty`` 1e-6 share, ``*_usdc6`` 1e-6 USDC, ``*_px``
1e-4 USDC, ``*_ns``):

=======================  =====================================================================
``GET /status``          the book and every market: risk state and why, position, PnL parts, open
                         orders, quotes, the last decision's reasons, the feed's age; totals
``GET /positions``       every market's YES, NO and net position, cash and marked PnL
``POST /pause``          ``{"market": M}`` or ``{}`` (every market): quote nothing until resumed
``POST /resume``         ``{"market": M}`` or ``{}`` (everything: operator states and HALTs)
``POST /reduce-only``    ``{"market": M}`` or ``{}``: only quote what lowers the position
``POST /halt``           ``{"reason": TEXT}``: HALT the book (kept across restarts until resumed)
``POST /cancel-all``     pause every market, cancel every order, confirm none is left open
=======================  =====================================================================

A market is named by its condition id or a unique prefix of it; an unknown one is refused (404)
with the markets the bot trades.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final, cast

import msgspec
import pykka

from actors.market import Status
from actors.risk import GetRisk, Operate, OperateResult, RiskView
from core.markets import MarketInfo
from core.messages import Reconcile
from core.ports import Clock, EventSink

log = logging.getLogger(__name__)

TOKEN_FILE: Final = "control.token"  # noqa: S105 (a file name, not a secret)
CONTROL_FILE: Final = "control.json"
#: The longest a command waits for the venue to confirm what it pulled.
PULL_WAIT_S: Final = 10.0
CANCEL_ALL_WAIT_S: Final = 30.0
#: How long a command waits for its audit record to reach the event log's file before it is answered.
AUDIT_FLUSH_S: Final = 2.0
_MAX_BODY: Final = 64 * 1024


def token_id(token: str) -> str:
    """The id a token is known by in logs: the first 12 hex digits of its sha256 (not the token)."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def create_token(run_dir: Path) -> str:
    """A new bearer token in ``run_dir/control.token``, mode 0600 (created so, never widened)."""
    token = secrets.token_urlsafe(32)
    path = run_dir / TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def write_control_file(run_dir: Path, info: dict[str, Any]) -> None:
    """``run_dir/control.json``, atomically."""
    tmp = run_dir / f".{CONTROL_FILE}.tmp"
    tmp.write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, run_dir / CONTROL_FILE)


class UnknownMarket(ValueError):
    """A market the bot does not trade (its message lists the ones it does)."""


class Operations:
    """What the control plane and the metrics read and do, over the engine and its risk actor."""

    def __init__(
        self,
        *,
        markets: Sequence[MarketInfo],
        risk: pykka.ActorRef[Any],
        statuses: Callable[[], dict[str, Status]],
        clock: Clock,
        mode: str,
        run_dir: Path,
        venue_open_orders: Callable[[], int] | None = None,
        rewards: Callable[[], Mapping[str, Any]] | None = None,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        """``venue_open_orders()`` (live): our orders the venue still lists, after asking it afresh;
        ``rewards()``: the latest reward tracking per market (``app.rewards.MarketRewards``)."""
        self.markets = list(markets)
        self.risk = risk
        self.statuses = statuses
        self.clock = clock
        self.mode = mode
        self.run_dir = run_dir
        self.venue_open_orders = venue_open_orders
        self.rewards = rewards
        self.sleep = sleep

    # --- reading -------------------------------------------------------------------------------------

    def risk_view(self) -> RiskView:
        """The risk manager's view now."""
        return cast(RiskView, self.risk.ask(GetRisk(), timeout=5))

    def resolve(self, name: str) -> str:
        """The condition id ``name`` names (itself or a unique prefix).

        Raises:
            UnknownMarket: No market, or more than one, is named so.
        """
        ids = [m.market for m in self.markets]
        if name in ids:
            return name
        found = [m for m in ids if len(name) >= 4 and m.startswith(name)]
        if len(found) == 1:
            return found[0]
        listed = ", ".join(m[:12] for m in ids)
        if found:
            raise UnknownMarket(f"market {name!r} is ambiguous: it begins {len(found)} markets ({listed})")
        raise UnknownMarket(
            f"unknown market {name!r}: this bot trades {len(ids)} markets ({listed}); "
            "polymm status lists them"
        )

    def status(self) -> dict[str, Any]:
        """The book and every market (``GET /status``)."""
        view = self.risk_view()
        statuses = self.statuses()
        risk_by = {m.market: m for m in view.markets}
        rewards = self.rewards() if self.rewards is not None else {}
        rows = []
        for info in self.markets:
            st = statuses.get(info.market)
            r = risk_by.get(info.market)
            rows.append(_market_row(info, st, r))
            tracked = rewards.get(info.market)
            rows[-1]["rewards"] = msgspec.to_builtins(tracked) if tracked is not None else None
        by_state: dict[str, int] = {}
        for row in rows:
            by_state[row["state"]] = by_state.get(row["state"], 0) + 1
        known = [r for r in rows if r["marked_pnl_usdc6"] is not None]
        return {
            "mode": self.mode,
            "run_dir": str(self.run_dir),
            "pid": os.getpid(),
            "ts_ns": view.ts_ns,
            "book": {
                "state": view.book_state,
                "rule": view.book_rule,
                "reasons": list(view.book_reasons),
                "operator": view.book_operator,
                "operator_note": view.book_operator_note,
                "halt": view.book_halt,
                "day_pnl_usdc6": view.day_pnl_usdc6,
                "day_realized_usdc6": view.day_realized_usdc6,
                "day_unrealized_usdc6": view.day_unrealized_usdc6,
                "peak_pnl_usdc6": view.peak_pnl_usdc6,
                "drawdown_usdc6": view.drawdown_usdc6,
                "daily_loss_stop_usdc6": view.daily_loss_stop_usdc6,
                "market_daily_loss_stop_usdc6": view.market_daily_loss_stop_usdc6,
                "heartbeat_age_ns": view.heartbeat_age_ns,
            },
            "markets": rows,
            "totals": {
                "markets": len(rows),
                "by_state": by_state,
                "open_orders": sum(r["open_orders"] for r in rows),
                "net_yes_qty": sum(r["net_yes_qty"] for r in rows),
                "cash_usdc6": sum(r["cash_usdc6"] for r in rows),
                "marked_pnl_usdc6": sum(r["marked_pnl_usdc6"] for r in known) if known else None,
                "day_pnl_usdc6": view.day_pnl_usdc6,
            },
        }

    def positions(self) -> dict[str, Any]:
        """Every market's position (``GET /positions``)."""
        statuses = self.statuses()
        rows = []
        for info in self.markets:
            st = statuses.get(info.market)
            if st is None:
                rows.append({"market": info.market, "question": info.question, "known": False})
                continue
            rows.append(
                {
                    "market": info.market,
                    "question": info.question,
                    "known": True,
                    "yes_qty": st.yes_qty,
                    "no_qty": st.no_qty,
                    "net_yes_qty": st.yes_qty - st.no_qty,
                    "cash_usdc6": st.cash_usdc6,
                    "marked_pnl_usdc6": st.pnl_usdc6,
                    "open_orders": st.open_orders,
                }
            )
        return {
            "mode": self.mode,
            "run_dir": str(self.run_dir),
            "ts_ns": self.clock.now_ns(),
            "markets": rows,
        }

    # --- commands ------------------------------------------------------------------------------------

    def operate(self, action: str, market: str, note: str, who: str) -> dict[str, Any]:
        """Pause, resume, reduce-only or halt ``market`` ("" every market / the book).

        A pause or halt waits (up to ``PULL_WAIT_S``) until the markets it stopped have no open order.

        Raises:
            UnknownMarket: ``market`` is not traded here.
        """
        if market:
            market = self.resolve(market)
        result = cast(
            OperateResult,
            self.risk.ask(Operate(action=action, market=market, note=note, who=who), timeout=10),  # type: ignore[arg-type]
        )
        if not result.ok:
            raise UnknownMarket(result.error)
        out: dict[str, Any] = {
            "ok": True,
            "action": action,
            "market": market,
            "book_state": result.book_state,
            "changed": result.changed,
        }
        if action in ("pause", "halt"):
            targets = [market] if market else [m.market for m in self.markets]
            out["open_orders"] = self._wait_pulled(targets, PULL_WAIT_S)
            out["pulled"] = out["open_orders"] == 0
        return out

    def cancel_all(self, who: str) -> dict[str, Any]:
        """Pause every market, let each cancel its orders, and confirm none is left open (live: the venue)."""
        paused = self.operate("pause", "", "cancel-all", who)
        left = self._wait_pulled([m.market for m in self.markets], CANCEL_ALL_WAIT_S)
        out: dict[str, Any] = {"ok": True, "action": "cancel_all", "book_state": paused["book_state"]}
        out["open_orders"] = left
        venue_left: int | None = None
        if self.venue_open_orders is not None:
            deadline = time.monotonic() + CANCEL_ALL_WAIT_S
            while True:
                venue_left = self.venue_open_orders()
                if venue_left == 0 or time.monotonic() > deadline:
                    break
                self.sleep(0.2)
        out["venue_open_orders"] = venue_left
        out["confirmed"] = left == 0 and venue_left in (0, None)
        return out

    def _wait_pulled(self, markets: Sequence[str], wait_s: float) -> int:
        deadline = time.monotonic() + wait_s
        while True:
            statuses = self.statuses()
            left = sum(statuses[m].open_orders for m in markets if m in statuses)
            if left == 0 or time.monotonic() > deadline:
                return left
            self.sleep(0.05)


def _market_row(info: MarketInfo, st: Status | None, r: Any) -> dict[str, Any]:
    sample = r.sample if r is not None else None
    yes = st.yes_qty if st is not None else (sample.inv.yes_qty if sample is not None else 0)
    no = st.no_qty if st is not None else (sample.inv.no_qty if sample is not None else 0)
    return {
        "market": info.market,
        "question": info.question,
        "state": r.state if r is not None else "active",
        "rule": r.rule if r is not None else "",
        "detail": r.detail if r is not None else "",
        "reasons": list(r.reasons) if r is not None else [],
        "operator": r.operator if r is not None else "active",
        "operator_note": r.operator_note if r is not None else "",
        "halt": r.halt if r is not None else "",
        "quoting": st.state if st is not None else "down",
        "yes_qty": yes,
        "no_qty": no,
        "net_yes_qty": yes - no,
        "cash_usdc6": st.cash_usdc6 if st is not None else 0,
        "marked_pnl_usdc6": st.pnl_usdc6 if st is not None else None,
        "day_pnl_usdc6": r.day_pnl_usdc6 if r is not None else None,
        "day_realized_usdc6": r.day_realized_usdc6 if r is not None else None,
        "day_unrealized_usdc6": r.day_unrealized_usdc6 if r is not None else None,
        "open_orders": st.open_orders if st is not None else 0,
        "bids": [list(q) for q in st.last_bids] if st is not None else [],
        "asks": [list(q) for q in st.last_asks] if st is not None else [],
        "best_bid_px": st.best_bid_px if st is not None else None,
        "best_ask_px": st.best_ask_px if st is not None else None,
        "last_decision": (
            {
                "quote": st.last_quote,
                "no_quote": st.no_quote,
                "pulled": st.pulled,
                "fair_px": st.fair_px,
                "half_spread_px": st.half_spread_px,
                "risk_state": st.risk_state,
                "risk_rule": st.risk_rule,
            }
            if st is not None
            else None
        ),
        "feed_age_ns": st.book_age_ns if st is not None else (r.feed_age_ns if r is not None else None),
        "quote_uptime": r.quote_uptime if r is not None else 0.0,
    }


# --- the server --------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "polymm-control"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("control: " + format, *args)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        plane = self.server.plane
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        who = self._authorize(plane)
        if who is None:
            return
        try:
            body = self._body() if method == "POST" else {}
            code, reply = plane.dispatch(method, path, body, who)
        except UnknownMarket as exc:
            code, reply = 404, {"ok": False, "error": str(exc)}
        except _BadRequest as exc:
            code, reply = 400, {"ok": False, "error": str(exc)}
        except (pykka.Timeout, pykka.ActorDeadError) as exc:
            code, reply = 503, {"ok": False, "error": f"the bot did not answer: {type(exc).__name__}"}
        except Exception as exc:
            log.exception("control: %s %s failed", method, path)
            code, reply = 500, {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        self._send(code, reply)

    def _authorize(self, plane: ControlPlane) -> str | None:
        header = self.headers.get("Authorization", "")
        given = header[len("Bearer ") :].strip() if header.startswith("Bearer ") else ""
        if given and hmac.compare_digest(given.encode(), plane.token.encode()):
            return plane.token_id
        why = "a wrong token" if given else "no token"
        plane.refused(self.command, self.path, why)
        self._send(
            401, {"ok": False, "error": f"unauthorized: {why} (Authorization: Bearer <control.token>)"}
        )
        return None

    def _body(self) -> dict[str, Any]:
        n = int(self.headers.get("Content-Length") or 0)
        if n > _MAX_BODY:
            raise _BadRequest(f"body of {n} bytes; at most {_MAX_BODY}")
        raw = self.rfile.read(n) if n else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise _BadRequest("the body is not JSON") from None
        if not isinstance(body, dict):
            raise _BadRequest("the body is not a JSON object")
        return body

    def _send(self, code: int, reply: dict[str, Any]) -> None:
        data = msgspec.json.encode(reply) + b"\n"
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if code == 401:
                self.send_header("WWW-Authenticate", 'Bearer realm="polymm"')
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client went away


class _BadRequest(ValueError):
    pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    plane: ControlPlane


class ControlPlane:
    """The HTTP API of a running bot (see the module docstring): ``start`` then ``stop``."""

    def __init__(
        self,
        ops: Operations,
        run_dir: Path,
        *,
        port: int,
        sink: EventSink,
        clock: Clock,
        metrics_url: str | None = None,
        flush_log: Callable[[float], bool] | None = None,
    ) -> None:
        """``flush_log(timeout_s)``: waits until the event log's records so far are in its file (the
        run log's ``JsonlFileSink.flush``); a command is answered only after its audit record is."""
        self.ops = ops
        self.run_dir = run_dir
        self.port = port
        self.sink = sink
        self.clock = clock
        self.metrics_url = metrics_url
        self.flush_log = flush_log
        self.token = ""
        self.token_id = ""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> str:
        """Create the token, listen on 127.0.0.1 and write ``control.json``; returns the URL."""
        self.token = create_token(self.run_dir)
        self.token_id = token_id(self.token)
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.plane = self
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, name="polymm-control", daemon=True)
        self._thread.start()
        write_control_file(
            self.run_dir,
            {
                "url": self.url,
                "pid": os.getpid(),
                "mode": self.ops.mode,
                "token_file": TOKEN_FILE,
                "token_id": self.token_id,
                "metrics_url": self.metrics_url,
                "started_ns": self.clock.now_ns(),
            },
        )
        self.sink.record(
            "control_plane",
            self.clock.now_ns(),
            "",
            {"url": self.url, "token_id": self.token_id, "metrics_url": self.metrics_url},
        )
        return self.url

    def stop(self) -> None:
        """Stop serving and remove ``control.json`` (the token file stays with the run)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with contextlib.suppress(OSError):
            (self.run_dir / CONTROL_FILE).unlink()

    def refused(self, method: str, path: str, why: str) -> None:
        """Record a request without the right token."""
        self.sink.record(
            "control_refused", self.clock.now_ns(), "", {"method": method, "path": path, "why": why}
        )

    def dispatch(self, method: str, path: str, body: dict[str, Any], who: str) -> tuple[int, dict[str, Any]]:
        """Serve one authorized request; each is recorded with who sent it and when."""
        ops = self.ops
        if method == "GET" and path in ("/status", "/positions"):
            reply = ops.status() if path == "/status" else ops.positions()
            self.sink.record("control_read", self.clock.now_ns(), "", {"command": path[1:], "token_id": who})
            return 200, reply
        if method != "POST" or path not in _COMMANDS:
            return 404, {"ok": False, "error": f"no such request: {method} {path}"}
        action = _COMMANDS[path]
        market = _text(body, "market")
        note = _text(body, "reason")
        if action == "halt" and not note:
            raise _BadRequest("halt needs a reason")
        received = self.clock.now_ns()
        try:
            result = ops.cancel_all(who) if action == "cancel_all" else ops.operate(action, market, note, who)
        except UnknownMarket as exc:
            self._audit(action, market, note, who, received, {"ok": False, "error": str(exc)})
            raise
        self._audit(action, result.get("market", market), note, who, received, result)
        return 200, result

    def _audit(
        self, action: str, market: str, note: str, who: str, received: int, result: dict[str, Any]
    ) -> None:
        self.sink.record(
            "control",
            received,
            market,
            {
                "command": action,
                "reason": note,
                "token_id": who,
                "done_ns": self.clock.now_ns(),
                "result": result,
            },
        )
        # The record is in the file before the operator hears back: a kill -9 right after a halt
        # must not lose the halt's audit line (the command itself took effect already).
        if self.flush_log is not None and not self.flush_log(AUDIT_FLUSH_S):
            log.warning(
                "control: the audit record of %s is not in the event log after %.0f s", action, AUDIT_FLUSH_S
            )
        log.info("control: %s %s by token %s: %s", action, market or "(all)", who, result)


_COMMANDS: Final = {
    "/pause": "pause",
    "/resume": "resume",
    "/reduce-only": "reduce_only",
    "/halt": "halt",
    "/cancel-all": "cancel_all",
}


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _BadRequest(f"{key}: not a string")
    if len(value) > 500:
        raise _BadRequest(f"{key}: longer than 500 characters")
    return value


# --- live: the order gateway's health ------------------------------------------------------------------


class GatewayWatch:
    """Live: the order gateway's status each second, on a thread of its own (never the trading thread).

    ``health()`` gives the risk rules the age of the last heartbeat the venue acknowledged (measured
    from when the watch saw the gateway's heartbeat count move; a gateway that does not answer ages
    it) and the venue errors tied to no market so far (retries after 5xx or no reply, and 429s).
    """

    def __init__(self, gateway: pykka.ActorRef[Any], clock: Clock, interval_s: float = 1.0) -> None:
        self.gateway = gateway
        self.clock = clock
        self.interval_s = interval_s
        self.status: Any = None
        self._beats = -1
        self._beat_seen_ns: int | None = None
        self._errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="polymm-gateway-watch", daemon=True)

    def start(self) -> None:
        """Poll until ``stop``."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()

    def poll(self) -> None:
        """Ask the gateway once."""
        from actors.gateway import GetGatewayStatus  # noqa: PLC0415 (live only)

        try:
            st: Any = self.gateway.ask(GetGatewayStatus(), timeout=2)
        except (pykka.Timeout, pykka.ActorDeadError):
            return
        now = self.clock.now_ns()
        if st.heartbeats != self._beats:
            self._beats = st.heartbeats
            if st.heartbeats > 0:
                self._beat_seen_ns = now
        self._errors = st.retries + st.rate_limited
        self.status = st

    def health(self) -> tuple[int | None, int]:
        """(heartbeat age in ns, None before the first; venue errors so far)."""
        seen = self._beat_seen_ns
        return (None if seen is None else max(0, self.clock.now_ns() - seen)), self._errors

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.poll()
            except Exception:
                log.exception("gateway watch")


def venue_open_orders(gateway: pykka.ActorRef[Any]) -> Callable[[], int]:
    """Live: our open orders as the venue lists them now (a reconcile, then the gateway's count)."""
    from actors.gateway import GetGatewayStatus  # noqa: PLC0415 (live only)

    def count() -> int:
        gateway.tell(Reconcile("operator cancel-all: confirm with the venue"))
        st: Any = gateway.ask(GetGatewayStatus(), timeout=30)
        return int(st.open_orders + st.queued + st.in_doubt)

    return count
