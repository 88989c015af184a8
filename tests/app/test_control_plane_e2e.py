"""The operator's control plane against a live run on the exchange emulator (issue #12, points 2-4).

``run-market-maker --mode live`` runs in a subprocess (a throwaway key) against the emulator on
127.0.0.1: two markets with a static book far from our quotes and no flow, so our quotes rest until
the test trades with them. The test drives the bot the way an operator does, with the ``polymm``
commands (``app.commands.control``: the latest run in the state directory, its ``control.json`` and
token), and checks each effect on the emulator's own record of our orders and positions. Every wait
is on a condition.

* ``polymm status`` shows every market's state and position, equal to the emulator's positions;
* a request without the token, or with a wrong one, is refused (401) and recorded;
* ``polymm pause --market A`` pulls A's orders within one second while B keeps quoting;
  ``polymm resume`` quotes A again; an unknown market is refused with one line;
* ``polymm cancel-all`` leaves no open order of ours at the emulator, confirmed;
* the metrics endpoint serves every listed series (``prometheus_client``'s own parser);
* ``polymm halt`` before a kill -9 is still in force after a restart: nothing is quoted (the books
  have arrived) until ``polymm resume``; every command is in the run's event log with its token id.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from prometheus_client.parser import text_string_to_metric_families

from adapters.runlog import latest_run_dir, read_events
from app.cli import main
from core.units import QTY_ONE
from emulator import Emulator
from emulator.scenario import FlowConfig, InitialBook, MarketConfig, Scenario
from tests.app.live_process import REPO, LineQueue, wait_until

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

SLUGS = ("control-market-a", "control-market-b")
LOT = 2_000 * QTY_ONE


def scenario() -> Scenario:
    # Books at 0.42/0.58 leave our quotes (about 0.49/0.51) alone at the top; no flow fills them.
    return Scenario(
        name="control-plane",
        seed=12,
        markets=tuple(
            MarketConfig(
                slug=slug,
                question=f"Does the control plane work ({slug[-1]})?",
                initial_book=InitialBook(bids=((4_200, LOT),), asks=((5_800, LOT),)),
                flow=FlowConfig(enabled=False),
                volume_24h=50_000,
                liquidity_usdc=50_000,
            )
            for slug in SLUGS
        ),
        trade_mined_ms=50,
        trade_confirmed_ms=150,
        step_ms=10,
    )


class Bot:
    """``run-market-maker --mode live`` in a subprocess, with the test's state directory."""

    def __init__(self, emu: Emulator, cfg: Path, state_dir: Path, key: str) -> None:
        env = {**os.environ, "POLYMM_PRIVATE_KEY": key, "PYTHONUNBUFFERED": "1"}
        for name in (
            "POLYMM_API_KEY",
            "POLYMM_API_SECRET",
            "POLYMM_API_PASSPHRASE",
            "POLYMM_PRIVATE_KEY_FILE",
        ):
            env.pop(name, None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "run-market-maker", "--config", str(cfg), "--mode", "live",
             "--state-dir", str(state_dir), "--clob-url", emu.clob_url, "--ws-url", emu.ws_market_url,
             "--gamma-url", emu.gamma_url],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.out = LineQueue(self.proc.stdout)  # type: ignore[arg-type]
        self.err = LineQueue(self.proc.stderr)  # type: ignore[arg-type]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                return self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


class Venue:
    """The emulator's record of our orders and positions (in process: no HTTP between the test and it)."""

    def __init__(self, emu: Emulator, wallet: str) -> None:
        self.emu, self.wallet = emu, wallet
        self.ids = {m["market"]: m for m in emu.venue.market_ids()}

    def live(self, market: str | None = None) -> list[dict[str, Any]]:
        return [
            o
            for o in self.emu.venue.account_orders(self.wallet)
            if o["status"] == "LIVE" and (market is None or o["market"] == market)
        ]

    def positions(self) -> dict[str, tuple[int, int]]:
        held: dict[str, list[int]] = {m: [0, 0] for m in self.ids}
        for row in self.emu.venue.positions(self.wallet):
            held[row["condition_id"]][row["outcome_index"]] = round(row["current_size"] * QTY_ONE)
        return {m: (yes, no) for m, (yes, no) in held.items()}


def polymm(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def live_config(tmp_path: Path) -> Path:
    text = (
        (REPO / "configs/market_maker.yaml").read_text().replace("local_state/", f"{tmp_path}/local_state/")
    )
    text = text.replace("dry_run: true", "dry_run: false\n  status_interval_s: 0")
    text = text.replace("max_spread_cents: 4", "max_spread_cents: 20")
    path = tmp_path / "live.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(scenario(), port=0) as e:
        yield e


def test_an_operator_runs_a_live_bot_through_its_control_plane(emu, live_config, tmp_path, capsys):
    acct = Account.create()
    state_dir = tmp_path / "state"
    venue = Venue(emu, acct.address)
    a, b = sorted(venue.ids)
    sd = ("--state-dir", str(state_dir))
    bot = Bot(emu, live_config, state_dir, acct.key.hex())
    try:
        bot.out.wait_for("control: http://127.0.0.1:", 90)
        wait_until(lambda: venue.live(a) and venue.live(b), 60, "both markets quoted")
        run_dir = latest_run_dir(state_dir)
        assert run_dir is not None
        control = json.loads((run_dir / "control.json").read_text())
        token_file = run_dir / "control.token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

        # A taker sells 5 shares into our bid in A: A holds 5 YES (or 5 fewer NO), as the venue says.
        http = httpx.Client(base_url=emu.clob_url, timeout=10)
        take = {"market": venue.ids[a]["slug"], "side": "SELL", "price": "0.45", "size": "5"}
        assert http.post("/emulator/take", json=take).status_code == 200

        def agrees() -> dict[str, Any] | None:
            code, out, _ = polymm(capsys, "status", *sd, "--json")
            assert code == 0
            s = json.loads(out)
            held = venue.positions()
            rows = {m["market"]: m for m in s["markets"]}
            ok = set(rows) == set(held) and all(
                (rows[m]["yes_qty"], rows[m]["no_qty"]) == held[m] for m in held
            )
            return s if ok and held[a] != (0, 0) else None

        s = wait_until(agrees, 30, "status positions equal the emulator's", poll_s=0.2)
        assert [m["state"] for m in s["markets"]] == ["active", "active"]
        assert s["book"]["state"] == "active" and s["mode"] == "live"
        code, out, _ = polymm(capsys, "status", *sd)
        assert code == 0 and a[:12] in out and b[:12] in out and "book ACTIVE" in out
        code, out, _ = polymm(capsys, "positions", *sd)
        assert code == 0 and a[:12] in out

        # No token, a wrong token: refused.
        for headers in ({}, {"Authorization": "Bearer not-the-token"}):
            req = urllib.request.Request(control["url"] + "/status", headers=headers)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(req, timeout=10)
            assert refused.value.code == 401
        req = urllib.request.Request(control["url"] + "/pause", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=10)
        assert refused.value.code == 401
        assert venue.live(a) and venue.live(b)  # the refused pause did nothing

        # The metrics: every listed series, parsed by prometheus_client's own parser.
        def scrape() -> dict[str, Any]:
            text = urllib.request.urlopen(control["metrics_url"], timeout=10).read().decode()
            return {f.name: f for f in text_string_to_metric_families(text)}

        # (The heartbeat's age comes with the risk manager's first evaluation after the gateway's watch.)
        families = wait_until(
            lambda: (f := scrape()) and "polymm_heartbeat_age_seconds" in f and f, 10, "a heartbeat age"
        )
        for name in (
            "polymm_position_shares",
            "polymm_net_position_shares",
            "polymm_pnl_usdc",
            "polymm_book_pnl_usdc",
            "polymm_loss_stop_usdc",
            "polymm_open_orders",
            "polymm_quote_uptime_ratio",
            "polymm_decisions",
            "polymm_orders",
            "polymm_fills",
            "polymm_rejects",
            "polymm_venue_errors",
            "polymm_tick_to_quote_seconds",
            "polymm_heartbeat_age_seconds",
            "polymm_feed_age_seconds",
            "polymm_risk_state",
            "polymm_book_risk_state",
            "polymm_position_drift",
        ):
            assert name in families, name
        by_market = {s.labels["market"]: s.value for s in families["polymm_risk_state"].samples}
        assert by_market == {a: 0.0, b: 0.0}
        assert families["polymm_heartbeat_age_seconds"].samples[0].value < 8

        # Pause A: its orders are gone within a second, B keeps quoting.
        code, _, err = polymm(capsys, "pause", *sd, "--market", "0xnot-a-market")
        assert code == 2 and "unknown market '0xnot-a-market'" in err and len(err.splitlines()) == 1
        t0 = time.monotonic()
        done = threading.Thread(target=main, args=(["pause", *sd, "--market", a[:10]],))
        done.start()
        wait_until(lambda: not venue.live(a), 1.0, "A's orders pulled within one second", poll_s=0.005)
        assert time.monotonic() - t0 < 1.0
        assert venue.live(b)
        done.join(30)
        code, out, _ = polymm(capsys, "status", *sd, "--json")
        rows = {m["market"]: m for m in json.loads(out)["markets"]}
        assert (rows[a]["state"], rows[a]["rule"]) == ("paused", "operator")
        assert rows[b]["state"] == "active"
        b_orders = {o["id"] for o in venue.live(b)}
        assert b_orders and not venue.live(a)

        # Resume: A quotes again.
        code, out, _ = polymm(capsys, "resume", *sd)
        assert code == 0 and "resumed every market" in out
        wait_until(lambda: venue.live(a), 30, "A quoted again")

        # Cancel-all: nothing of ours left open at the emulator, and the bot says it confirmed it.
        code, out, _ = polymm(capsys, "cancel-all", *sd)
        assert code == 0 and "confirmed" in out and "NOT" not in out, out
        assert venue.live() == []
        code, out, _ = polymm(capsys, "status", *sd, "--json")
        assert {m["state"] for m in json.loads(out)["markets"]} == {"paused"}
        code, out, _ = polymm(capsys, "resume", *sd)
        wait_until(lambda: venue.live(a) and venue.live(b), 30, "both quoted again after cancel-all")

        # HALT, then kill -9: the restarted bot starts halted and quotes nothing until resumed.
        code, out, _ = polymm(capsys, "halt", *sd, "--reason", "operator test halt")
        assert code == 0 and "halted the book" in out
        assert venue.live() == []
        first_run = run_dir
        bot.proc.kill()
        bot.proc.wait(30)
    finally:
        bot.stop()
        out_text, err_text = "".join(bot.out.rest()), "".join(bot.err.rest())
    assert "Traceback" not in err_text, err_text

    code, _, err = polymm(capsys, "status", *sd)
    assert code == 1 and "does not answer" in err  # the killed bot's control.json is stale

    bot = Bot(emu, live_config, state_dir, acct.key.hex())
    try:
        bot.out.wait_for("risk: the book starts HALTED", 90)
        bot.out.wait_for("control: http://127.0.0.1:", 30)
        second_run = latest_run_dir(state_dir)
        assert second_run is not None and second_run != first_run

        def books_in() -> dict[str, Any] | None:
            code, out, _ = polymm(capsys, "status", *sd, "--json")
            s = json.loads(out) if code == 0 else None
            ok = s is not None and all(m["best_bid_px"] is not None for m in s["markets"])
            return s if ok else None

        s = wait_until(books_in, 60, "the restarted bot has both books", poll_s=0.2)
        assert s["book"]["state"] == "halted" and "operator test halt" in s["book"]["halt"]
        assert {m["state"] for m in s["markets"]} == {"halted"}
        assert all(m["last_decision"] is None or not m["last_decision"]["quote"] for m in s["markets"])
        assert venue.live() == []  # books in hand, and nothing quoted

        code, out, _ = polymm(capsys, "resume", *sd)
        assert code == 0
        wait_until(lambda: venue.live(a) and venue.live(b), 30, "quoting again after resume")
        assert bot.stop() == 0
    finally:
        bot.stop()
    assert "Traceback" not in "".join(bot.err.rest())

    # The audit log: each command with its token id and time, the refusals too.
    log1 = list(read_events(first_run))
    token_id = control["token_id"]
    commands = [(e["command"], e["market"]) for e in log1 if e["kind"] == "control"]
    assert commands == [
        ("pause", "0xnot-a-market"),  # refused: recorded all the same
        ("pause", a),
        ("resume", ""),
        ("cancel_all", ""),
        ("resume", ""),
        ("halt", ""),
    ]
    assert [e["result"]["ok"] for e in log1 if e["kind"] == "control"] == [False] + [True] * 5
    assert all(e["token_id"] == token_id and e["ts_ns"] > 0 for e in log1 if e["kind"] == "control")
    reads = [e for e in log1 if e["kind"] == "control_read"]
    assert {e["command"] for e in reads} == {"status", "positions"}
    assert all(e["token_id"] == token_id and e["ts_ns"] > 0 for e in reads)
    assert [e["why"] for e in log1 if e["kind"] == "control_refused"] == [
        "no token",
        "a wrong token",
        "no token",
    ]
    risk = [e for e in log1 if e["kind"] == "risk" and e["market"] == a]
    assert any(e["state"] == "paused" and e["rule"] == "operator" for e in risk)
    log2 = list(read_events(second_run))
    assert [e["command"] for e in log2 if e["kind"] == "control"] == ["resume"]
    assert not any(
        e["kind"] == "place" and e["ts_ns"] < next(c["ts_ns"] for c in log2 if c["kind"] == "control")
        for e in log2
    )
    token = (first_run / "control.token").read_text().strip()
    for path in (first_run / "events.jsonl", tmp_path / "local_state" / "market_maker" / "polymm.log"):
        assert token not in path.read_text()
    assert "Traceback" not in out_text
