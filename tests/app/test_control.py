"""The control plane and the metrics in process: a real risk actor, fake market statuses, no venue.

The end-to-end run against the emulator is ``test_control_plane_e2e.py``; here each rule of the API
on its own: the token (0600, 401 without it, recorded), commands recorded with the token's id,
unknown markets and bad requests refused, the files the CLI finds the bot by, and every series of
the metrics endpoint through ``prometheus_client``'s own parser.
"""

from __future__ import annotations

import json
import stat
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from actors.market import LatencyHistogram, Status
from actors.risk import MarketSample, RiskActor, RiskMonitor
from app.cli import main
from app.control import CONTROL_FILE, TOKEN_FILE, ControlPlane, Operations, token_id
from app.metrics import EngineCollector, MetricsServer
from core.config import Config
from core.eventlog import BufferSink
from core.inventory import Inventory
from core.markets import MarketInfo
from core.risk import TradingState, risk_limits
from core.units import NS_PER_S, QTY_ONE

A = "0x" + "a1" * 32
B = "0x" + "b2" * 32
T0 = 1_800_000_000 * NS_PER_S


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def now_ns(self) -> int:
        return self.t


def records(sink: BufferSink, kind: str) -> list[dict[str, Any]]:
    # (a function, not a subclass: BufferSink is a native class in the compiled build, bench/fast.py)
    return [r for r in (json.loads(x) for x in sink.lines) if r["kind"] == kind]


def status(market: str, open_orders: int = 3) -> Status:
    return Status(
        market=market,
        book_valid=True,
        yes_qty=10 * QTY_ONE,
        no_qty=0,
        cash_usdc6=-4_900_000,
        open_orders=open_orders,
        exposure_usdc6=0,
        decisions=1,
        fills=1,
        last_quote=True,
        last_bids=((4_900, 10 * QTY_ONE),),
        last_asks=((5_100, 10 * QTY_ONE),),
        skewed_mid_px=5_000,
        wakeup_ns=0,
        best_bid_px=4_800,
        best_ask_px=5_200,
        book_age_ns=NS_PER_S,
        pnl_usdc6=100_000,
        state="quoting",
    )


@pytest.fixture
def plane(tmp_path: Path):
    sink, clock = BufferSink(), Clock()
    told: list[tuple[str, Any]] = []
    monitor = RiskMonitor(risk_limits(Config()), [A, B], book_sink=sink)
    monitor.start_gates()
    risk = RiskActor.start(monitor, lambda m, g: told.append((m, g)), clock)
    risk.tell(
        MarketSample(market=A, ts_ns=T0, inv=Inventory(yes_qty=10 * QTY_ONE), mid_px=5_000, book_ts_ns=T0)
    )

    def snapshot() -> dict[str, Status]:
        # A market's orders go when its gate stops it (the sessions' part, faked).
        last = dict(told)
        return {m: status(m, 0 if m in last and last[m].state >= TradingState.PAUSED else 3) for m in (A, B)}

    ops = Operations(
        markets=[MarketInfo(market=m, yes_token="y", no_token="n", question=f"Q {m[:4]}") for m in (A, B)],
        risk=risk,
        statuses=snapshot,
        clock=clock,
        mode="paper",
        run_dir=tmp_path,
        sleep=lambda s: None,
    )
    cp = ControlPlane(ops, tmp_path, port=0, sink=sink, clock=clock, metrics_url="http://127.0.0.1:1/metrics")
    cp.start()
    try:
        yield cp, sink, told
    finally:
        cp.stop()
        risk.stop()


def call(
    cp: ControlPlane, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None
):
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    data = json.dumps(body or {}).encode() if method == "POST" else None
    req = urllib.request.Request(cp.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_token_is_private_and_every_request_needs_it(plane, tmp_path):
    cp, sink, told = plane
    token = (tmp_path / TOKEN_FILE).read_text().strip()
    assert stat.S_IMODE((tmp_path / TOKEN_FILE).stat().st_mode) == 0o600
    info = json.loads((tmp_path / CONTROL_FILE).read_text())
    assert info["url"] == cp.url and info["token_id"] == token_id(token) and token not in json.dumps(info)
    assert info["url"].startswith("http://127.0.0.1:")

    assert call(cp, "GET", "/status")[0] == 401
    assert call(cp, "GET", "/status", token="x" * len(token))[0] == 401
    assert call(cp, "POST", "/halt", {"reason": "no"}, token="nope")[0] == 401
    assert told == []  # nothing done
    assert [r["why"] for r in records(sink, "control_refused")] == [
        "no token",
        "a wrong token",
        "a wrong token",
    ]
    assert all(token not in line.decode() for line in sink.lines)

    code, s = call(cp, "GET", "/status", token=token)
    assert code == 200 and [m["market"] for m in s["markets"]] == [A, B]
    assert s["markets"][0]["yes_qty"] == 10 * QTY_ONE and s["markets"][0]["bids"] == [[4_900, 10 * QTY_ONE]]
    assert s["book"]["state"] == "active" and s["totals"]["open_orders"] == 6
    code, p = call(cp, "GET", "/positions", token=token)
    assert code == 200 and p["markets"][1]["net_yes_qty"] == 10 * QTY_ONE
    # The reads are in the audit log too, with who and when (the refused ones are not reads).
    assert records(sink, "control_read") == [
        {"kind": "control_read", "ts_ns": T0, "market": "", "command": c, "token_id": token_id(token)}
        for c in ("status", "positions")
    ]


def test_commands_act_through_the_risk_actor_and_are_recorded_with_the_token_id(plane, tmp_path):
    cp, sink, told = plane
    token = (tmp_path / TOKEN_FILE).read_text().strip()

    code, r = call(cp, "POST", "/pause", {"market": A[:8]}, token=token)  # a unique prefix

    assert code == 200 and r["market"] == A and r["changed"] == {A: "paused"} and r["pulled"]
    assert [(m, g.state) for m, g in told] == [(A, TradingState.PAUSED)]
    code, r = call(cp, "POST", "/pause", {"market": "0xzz"}, token=token)
    assert code == 404 and "unknown market '0xzz'" in r["error"]
    code, r = call(cp, "POST", "/pause", {"market": "0x"}, token=token)
    assert code == 404  # too short to name one
    code, r = call(cp, "POST", "/halt", {}, token=token)
    assert code == 400 and r["error"] == "halt needs a reason"
    assert call(cp, "POST", "/nothing", {}, token=token)[0] == 404
    code, r = call(cp, "POST", "/halt", {"reason": "news"}, token=token)
    assert code == 200 and r["book_state"] == "halted"
    code, r = call(cp, "POST", "/resume", {}, token=token)
    assert code == 200 and r["book_state"] == "active"

    audit = records(sink, "control")
    assert [(a["command"], a["market"], a["result"]["ok"]) for a in audit] == [
        ("pause", A, True),
        ("pause", "0xzz", False),
        ("pause", "0x", False),
        ("halt", "", True),
        ("resume", "", True),
    ]
    assert {a["token_id"] for a in audit} == {token_id(token)}
    assert all(a["ts_ns"] == T0 and a["done_ns"] >= T0 for a in audit)
    assert audit[3]["reason"] == "news"


def test_a_command_is_answered_only_after_its_audit_record_is_in_the_log_file(plane, tmp_path):
    cp, sink, _told = plane
    token = (tmp_path / TOKEN_FILE).read_text().strip()
    flushed: list[list[str]] = []  # at each flush: the commands the log held

    def flush_log(timeout_s: float) -> bool:
        flushed.append([r["command"] for r in records(sink, "control")])
        return True

    cp.flush_log = flush_log

    assert call(cp, "POST", "/halt", {"reason": "news"}, token=token)[0] == 200
    assert flushed == [["halt"]]  # recorded, then flushed, then answered
    assert call(cp, "POST", "/pause", {"market": "0xzz"}, token=token)[0] == 404
    assert flushed[-1] == ["halt", "pause"]  # a refused command too
    assert call(cp, "GET", "/status", token=token)[0] == 200
    assert len(flushed) == 2  # a read is not waited for


def test_the_cli_finds_the_bot_by_its_latest_run_and_says_when_there_is_none(tmp_path, capsys):
    assert main(["status", "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no run in" in err[0]

    run = tmp_path / "runs" / "20260101T000000Z-live-abcdef"
    run.mkdir(parents=True)
    assert main(["pause", "--state-dir", str(tmp_path)]) == 1
    assert "is not running (no control.json" in capsys.readouterr().err
    (run / TOKEN_FILE).write_text("t\n")
    (run / CONTROL_FILE).write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": 2**22 + 12345}))
    assert main(["halt", "--state-dir", str(tmp_path), "--reason", "x"]) == 1
    err = capsys.readouterr().err
    assert "does not answer at http://127.0.0.1:9: its process is gone (killed?)" in err


def test_the_metrics_serve_every_listed_series_to_prometheus_clients_parser():
    monitor = RiskMonitor(risk_limits(Config()), [A, B])
    monitor.observe(
        MarketSample(
            market=A,
            ts_ns=T0,
            inv=Inventory(yes_qty=10 * QTY_ONE, no_qty=2 * QTY_ONE),
            mid_px=5_000,
            book_ts_ns=T0,
            quoting=True,
            fills=3,
            places=9,
            cancels=4,
            decisions=12,
            rejects=1,
            open_orders=6,
        )
    )
    monitor.evaluate(T0 + NS_PER_S, heartbeat_age_ns=2 * NS_PER_S, venue_errors=1)
    latency = LatencyHistogram()
    for us in (40, 60, 90, 3_000):
        latency.observe(us * 1_000)
    collector = EngineCollector(
        lambda: monitor.view(T0 + 2 * NS_PER_S), latency, events_in=lambda: 77, venue_errors=lambda: 1
    )
    server = MetricsServer(collector, 0)
    text = generate_latest(server.registry).decode()
    url = server.start()
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            served = reply.read().decode()
    finally:
        server.stop()

    families = {f.name: f for f in text_string_to_metric_families(served)}
    assert set(families) == {f.name for f in text_string_to_metric_families(text)}

    samples = [x for f in families.values() for x in f.samples]

    def value(name: str, **labels: str) -> float:
        return next(
            x.value
            for x in samples
            if x.name == name and all(x.labels.get(k) == v for k, v in labels.items())
        )

    assert value("polymm_position_shares", market=A, outcome="yes") == 10
    assert value("polymm_net_position_shares", market=A) == 8
    assert value("polymm_open_orders", market=A) == 6
    assert value("polymm_orders_total", market=A, kind="place") == 9
    assert value("polymm_decisions_total", market=A) == 12
    assert value("polymm_fills_total", market=A) == 3 and value("polymm_rejects_total", market=A) == 1
    assert value("polymm_quote_uptime_ratio", market=A) == 1.0
    assert value("polymm_risk_state", market=B) == 0 and value("polymm_book_risk_state") == 0
    assert value("polymm_heartbeat_age_seconds") == 2 and value("polymm_venue_errors_total") == 1
    assert value("polymm_feed_age_seconds", market=A) == 2
    assert value("polymm_loss_stop_usdc", scope="market") == Config().inventory.per_market_ev_cap
    assert value("polymm_pnl_usdc", market=A, part="day") == 0
    assert value("polymm_book_pnl_usdc", part="drawdown") == 0
    assert value("polymm_position_drift", market=A) == 0
    assert value("polymm_market_events_total") == 77
    hist = families["polymm_tick_to_quote_seconds"]
    assert value("polymm_tick_to_quote_seconds_count") == 4
    assert value("polymm_tick_to_quote_seconds_bucket", le="0.0001") == 3
    assert hist.type == "histogram"


def test_reduce_only_through_the_cli_for_one_market_then_the_book_until_resumed(plane, tmp_path, capsys):
    cp, sink, told = plane
    token = (tmp_path / TOKEN_FILE).read_text().strip()
    state = tmp_path / "state"
    (state / "runs").mkdir(parents=True)
    (state / "runs" / "latest").symlink_to(tmp_path)  # the plane's run directory is the latest run
    sd = ("--state-dir", str(state))

    def states() -> dict[str, tuple[str, str]]:
        code, s = call(cp, "GET", "/status", token=token)
        assert code == 200
        return {m["market"]: (m["state"], m["rule"]) for m in s["markets"]} | {"": (s["book"]["state"], "")}

    assert main(["reduce-only", *sd, "--market", B[:8]]) == 0
    assert capsys.readouterr().out.strip() == f"reduce-only {B}; the book is active"
    assert [(m, g.state) for m, g in told] == [(B, TradingState.REDUCE_ONLY)]
    assert states() == {A: ("active", ""), B: ("reduce_only", "operator"), "": ("active", "")}

    assert main(["reduce-only", *sd]) == 0
    assert capsys.readouterr().out.strip() == "reduce-only every market; the book is reduce_only"
    assert [(m, g.state) for m, g in told] == [(B, TradingState.REDUCE_ONLY), (A, TradingState.REDUCE_ONLY)]
    assert {m: s for m, (s, _) in states().items()} == dict.fromkeys((A, B, ""), "reduce_only")

    assert main(["resume", *sd]) == 0
    assert {m: s for m, (s, _) in states().items()} == dict.fromkeys((A, B, ""), "active")
    audit = records(sink, "control")
    assert [(a["command"], a["market"], a["token_id"]) for a in audit] == [
        ("reduce_only", B, token_id(token)),
        ("reduce_only", "", token_id(token)),
        ("resume", "", token_id(token)),
    ]
