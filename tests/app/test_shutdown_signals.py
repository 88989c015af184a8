"""A second SIGINT/SIGTERM during a slow shutdown forces a bounded exit that still tries one cancel-all.

Unit tests drive ``app.signals.ShutdownSignals`` with fakes (no real exit); the end-to-end test runs
``run-market-maker --mode live`` in a subprocess against the exchange emulator whose cancels are made
slow by the scenario's latency faults, interrupts it twice, and checks the exit comes within 5 s, says
so in one line, and that the emulator received the cancel-all.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from app.signals import EXIT_ORDERS_MAY_REMAIN, FORCE_EXIT_S, ShutdownSignals
from emulator import Emulator
from tests.app.live_process import REPO, LineQueue, wait_until


class Recorder:
    def __init__(self) -> None:
        self.codes: list[int] = []
        self.done = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.done.set()


def test_the_first_signal_asks_for_an_orderly_shutdown_and_nothing_more():
    out, exits = io.StringIO(), Recorder()
    s = ShutdownSignals(lambda: True, exit_now=exits, stream=out)

    s._on_signal(signal.SIGINT, None)

    assert s.requested.is_set()
    assert out.getvalue() == "\nSIGINT: cancelling every order (send it again to force a fast exit)\n"
    assert exits.codes == []


def test_a_second_signal_cancels_all_and_exits_128_plus_signal_when_nothing_remains():
    out, exits, calls = io.StringIO(), Recorder(), []
    s = ShutdownSignals(lambda: calls.append("cancel_all") or [], exit_now=exits, stream=out)

    s._on_signal(signal.SIGINT, None)
    s._on_signal(signal.SIGTERM, None)

    assert exits.done.wait(10)
    assert exits.codes[0] == 128 + signal.SIGTERM
    assert calls == ["cancel_all"]
    lines = out.getvalue().strip().splitlines()
    assert lines[-2:] == [
        f"SIGTERM again: one cancel-all, then exit within {FORCE_EXIT_S:g} s",
        "forced exit: cancel-all done; the venue lists no open order of ours",
    ]


def test_the_forced_exit_hook_gets_the_code_and_the_orders_left_before_the_exit():
    exits, seen = Recorder(), []
    s = ShutdownSignals(
        lambda: ["0xaa"],
        exit_now=exits,
        stream=io.StringIO(),
        on_forced_exit=lambda code, detail: seen.append((code, dict(detail), list(exits.codes))),
    )

    s.force_exit(signal.SIGTERM)

    assert seen == [
        (
            EXIT_ORDERS_MAY_REMAIN,
            {
                "signal": "SIGTERM",
                "cancel_all": "not confirmed",
                "why": "the venue still lists 1 open orders of ours",
                "orders_may_remain": ["0xaa"],
            },
            [],  # called before the exit
        )
    ]
    assert exits.codes == [EXIT_ORDERS_MAY_REMAIN]


def test_a_forced_exit_hook_that_fails_never_stops_the_exit():
    out, exits = io.StringIO(), Recorder()

    def broken(code: int, detail: dict) -> None:
        raise OSError("disk full")

    s = ShutdownSignals(list, exit_now=exits, stream=out, on_forced_exit=broken)
    s.force_exit(signal.SIGINT)

    assert exits.codes == [130]
    assert "forced exit: could not record the run's end (OSError: disk full)" in out.getvalue()
    assert s.forced_detail == {"signal": "SIGINT", "cancel_all": "confirmed"}


def test_a_forced_exit_whose_cancel_all_leaves_orders_exits_3_naming_each():
    out = io.StringIO()
    s = ShutdownSignals(lambda: ["0xaa", "0xbb"], exit_now=Recorder(), stream=out)

    code = s.forced_exit_code(signal.SIGINT)

    assert code == EXIT_ORDERS_MAY_REMAIN
    assert out.getvalue().splitlines() == [
        "forced exit: cancel-all not confirmed (the venue still lists 2 open orders of ours): orders of"
        " ours may remain open on the venue:",
        "  0xaa",
        "  0xbb",
    ]


def test_a_forced_exit_that_cannot_reach_the_venue_exits_3_saying_why():
    out = io.StringIO()
    gone = ConnectionError("venue gone")
    s = ShutdownSignals(lambda: (_ for _ in ()).throw(gone), exit_now=Recorder(), stream=out)

    code = s.forced_exit_code(signal.SIGINT)

    assert code == EXIT_ORDERS_MAY_REMAIN
    assert out.getvalue() == (
        "forced exit: cancel-all not confirmed (ConnectionError: venue gone): orders of ours may remain"
        " open on the venue\n"
    )


def test_a_cancel_all_that_does_not_answer_within_the_budget_is_not_waited_for():
    release = threading.Event()
    out = io.StringIO()
    s = ShutdownSignals(lambda: release.wait() and [], exit_now=Recorder(), stream=out, budget_s=0)
    try:
        code = s.forced_exit_code(signal.SIGINT)
    finally:
        release.set()

    assert code == EXIT_ORDERS_MAY_REMAIN
    assert "(no answer within 0 s)" in out.getvalue()


def test_without_a_venue_a_forced_exit_is_128_plus_signal():
    s = ShutdownSignals(None, exit_now=Recorder(), stream=io.StringIO())

    assert s.forced_exit_code(signal.SIGINT) == 130


def test_install_and_restore_put_the_previous_handlers_back():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    s = ShutdownSignals(None, exit_now=Recorder(), stream=io.StringIO())

    s.install()
    installed = {sig: signal.getsignal(sig) for sig in before}
    s.restore()

    assert all(h == s._on_signal for h in installed.values())
    assert {sig: signal.getsignal(sig) for sig in before} == before


# --- end to end: a live run against the emulator, its cancels made slow ------------------------------------

SLOW_CANCELS = """
name: slow-cancels
seed: 11
markets:
  - slug: slow-cancel-market
    question: Will cancels be slow?
    tick_px: 100
    min_qty: 5_000_000
    fair_px: 5000
    volume_24h: 50000
    liquidity_usdc: 50000
    end_in_days: 30
    initial_book: {bids: [[4800, 100_000_000]], asks: [[5200, 100_000_000]]}
faults:
  # Every cancel the markets and the gateway send takes 3.5 s: an orderly shutdown needs several.
  # The forced exit's cancel-all (DELETE /cancel-all) and its listing are not slowed.
  - {kind: latency, routes: ["DELETE /orders", "DELETE /order", "DELETE /cancel-market-orders"], ms: 3500}
"""


@pytest.fixture
def slow_emu(tmp_path: Path) -> Iterator[Emulator]:
    path = tmp_path / "slow.yaml"
    path.write_text(SLOW_CANCELS)
    with Emulator(str(path), port=0) as e:
        yield e


def test_a_second_ctrl_c_during_a_slow_shutdown_exits_within_5_s_after_one_cancel_all(slow_emu, tmp_path):
    key = Account.create()
    cfg = tmp_path / "live.yaml"
    text = (
        (REPO / "configs/market_maker.yaml").read_text().replace("local_state/", f"{tmp_path}/local_state/")
    )
    cfg.write_text(text.replace("dry_run: true", "dry_run: false"))
    env = {
        **os.environ,
        "POLYMM_PRIVATE_KEY": key.key.hex(),
        "NO_PROXY": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "run-market-maker", "--config", str(cfg), "--mode", "live",
         "--clob-url", slow_emu.clob_url, "--ws-url", slow_emu.ws_market_url,
         "--gamma-url", slow_emu.gamma_url],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    err = LineQueue(proc.stderr)  # type: ignore[arg-type]
    out = LineQueue(proc.stdout)  # type: ignore[arg-type]

    def mine() -> dict:
        users = slow_emu.status()["users"].values()
        return next((u for u in users if u["address"].lower() == key.address.lower()), {})

    try:
        out.wait_for("LIVE trading as wallet", 60)
        wait_until(lambda: mine().get("open_orders", 0) > 0, 60, "the bot quoted")

        proc.send_signal(signal.SIGINT)
        err.wait_for("SIGINT: cancelling every order", 30)
        # The orderly shutdown is now waiting on cancels that take 3.5 s each.
        assert proc.poll() is None
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    lines = err.rest()
    assert elapsed < FORCE_EXIT_S, elapsed
    assert any("SIGINT again: one cancel-all, then exit within 5 s" in line for line in lines)
    assert "Traceback" not in "".join(lines)
    assert mine()["requests"].get("cancel_all", 0) == 1  # the one cancel-all reached the venue
    assert [line for line in lines if line.startswith("forced exit:")] == [
        "forced exit: cancel-all done; the venue lists no open order of ours\n"
    ]
    assert code == 128 + signal.SIGINT  # forced, with every order confirmed cancelled
    assert mine()["open_orders"] == 0
