"""Acceptance (#10) on the real trading process: ``polymm run-market-maker --mode live`` in a subprocess.

Each test starts the process with a throwaway key against the exchange emulator on 127.0.0.1 and
judges it by the emulator's own record of our address (``GET /emulator/orders``, ``/emulator/trades``,
the Data API positions) and by the run's event log:

* kill -9 in the middle of live trading, then a restart quoting another selection of markets: the
  first decision of every market shows the venue's inventory, and within 10 s no order of ours is open
  that the new ledger does not know (``ops.on_start`` adopt and cancel);
* a 429 with ``Retry-After: 300``: every quote is pulled within ``ops.max_rate_limit_pause_s``, the
  process says why, keeps heartbeating and keeps running;
* a shutdown while the venue refuses cancels (425), or is gone: exit 3, naming every order of ours
  that the venue still lists; a second signal meanwhile exits 3 within 5 s, naming them too.

The scenario has no flow: the books move only when a test takes, so what the bot should do is known.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from adapters.runlog import latest_run_dir, read_events
from app.signals import EXIT_ORDERS_MAY_REMAIN, FORCE_EXIT_S
from core.units import QTY_ONE, parse_qty
from emulator import Emulator
from tests.app.live_process import (
    EmulatorControl,
    LiveProcess,
    event_log,
    live_config,
    new_key,
    refresh_markets,
    route,
    selected_markets_path,
    wait_until,
)

pytestmark = pytest.mark.slow

#: Three markets whose books move only when a test takes (no flow): 0.48 bid, 0.52 ask, 100 shares.
#: The venue's dead-man switch waits 120 s, so only the bot can clean up after a killed run.
SCENARIO = """
name: live-process
seed: 3
flow: {enabled: false}
heartbeat_timeout_ms: 120000
rate_limits:
  enabled: false
  # A tier whose order bucket hardly refills: once drained, every new order is a 429 for minutes.
  custom_tiers: {trickle: {orders_per_s: 0.001, order_burst: 60, cancels_per_s: 80, cancel_burst: 120}}
markets:
""" + "".join(
    f"""
  - slug: m{i}
    question: Market {i}?
    fair_px: 5000
    volume_24h: {50_000 - i * 1_000}
    liquidity_usdc: 50000
    end_in_days: 30
    initial_book: {{bids: [[4800, 100_000_000]], asks: [[5200, 100_000_000]]}}
"""
    for i in (1, 2, 3)
)

START_S = 60.0  # generous: a loaded machine imports the SDK slowly


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO)
    with Emulator(str(path), port=0) as e:
        yield e


def start(emu: Emulator, cfg: Path, key: str, *extra: str) -> LiveProcess:
    return LiveProcess(
        config=cfg,
        key=key,
        clob_url=emu.clob_url,
        ws_url=emu.ws_market_url,
        gamma_url=emu.gamma_url,
        extra_args=extra,
    )


def quoting(venue: EmulatorControl, markets: Iterable[str]) -> bool:
    """Whether we have an order open in each of ``markets``."""
    return set(markets) <= set(venue.live_orders().values())


class Run(NamedTuple):
    proc: LiveProcess
    venue: EmulatorControl
    markets: list[str]  # condition ids of m1 and m2
    state: Path  # --state-dir


@contextmanager
def quoting_m1_m2(emu: Emulator, tmp_path: Path, ops: dict[str, Any] | None = None) -> Iterator[Run]:
    """A live run quoting m1 and m2, settled (waited for); killed on the way out if it still runs."""
    key, address = new_key()
    venue = EmulatorControl(emu.clob_url, address)
    cfg = live_config(tmp_path, ops)
    markets = route(refresh_markets(emu.gamma_url, cfg, tmp_path), ["m1", "m2"], emu.gamma_url,
                    selected_markets_path(tmp_path))  # fmt: skip
    state = tmp_path / "state"
    proc = start(emu, cfg, key, "--state-dir", str(state))
    try:
        wait_until(lambda: settled(venue, markets), START_S, "quoting m1 and m2", proc.describe)
        yield Run(proc, venue, markets, state)
    finally:
        proc.close()
        venue.close()


def still_open(emu: Emulator, run: Run) -> set[str]:
    """Our orders the venue lists as open (read in process: a closed emulator keeps its record)."""
    return {o["id"] for o in emu.venue.account_orders(run.venue.address) if o["status"] == "LIVE"}


def settled(venue: EmulatorControl, markets: Iterable[str]) -> bool:
    """Orders open in each of ``markets``, the same ones a moment later (no requote under way)."""
    before = venue.live_orders()
    time.sleep(0.3)
    return before == venue.live_orders() and set(markets) <= set(before.values())


def first_decisions(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        if r["kind"] == "decision":
            out.setdefault(r["market"], r)
    return out


def known_order_ids(records: list[dict[str, Any]]) -> set[str]:
    """Venue ids a run's ledger knew: the orders it sent and those it adopted."""
    ids = set()
    for r in records:
        sent = r["kind"] == "order_sent"
        adopted = r["kind"] == "adopted" or (r["kind"] == "ledger" and r.get("event") == "adopted")
        if sent or adopted:
            ids.add(r.get("order_id", ""))
    return ids - {""}


# --- kill -9, then a restart with another selection -----------------------------------------------------


@pytest.mark.parametrize("on_start", ["adopt", "cancel"])
def test_a_restart_after_kill_9_with_another_selection_knows_the_truth(emu, tmp_path, on_start):
    key, address = new_key()
    venue = EmulatorControl(emu.clob_url, address)
    cfg = live_config(tmp_path, {"on_start": on_start})
    cache = refresh_markets(emu.gamma_url, cfg, tmp_path)
    m1, m2 = route(cache, ["m1", "m2"], emu.gamma_url, selected_markets_path(tmp_path))
    procs: list[LiveProcess] = []
    try:
        # Run 1 quotes m1 and m2; takers fill it on both, a 6-decimal size on m2; then kill -9.
        run1 = start(emu, cfg, key, "--state-dir", str(tmp_path / "state1"))
        procs.append(run1)
        wait_until(lambda: quoting(venue, (m1, m2)), START_S, "run 1 quoting m1 and m2", run1.describe)
        sent = len(venue.orders())
        assert venue.take("m1", "SELL", "0.49", size="5")["filled_size"] == "5"
        filled_m2 = parse_qty(venue.take("m2", "BUY", "0.51", amount="5")["filled_size"])
        assert filled_m2 % 10_000, "a 6-decimal fill"
        # Killed once it has moved its quotes after the fills (mid-requote, m1 could be bare).
        wait_until(lambda: len(venue.orders()) > sent and settled(venue, (m1, m2)), 30, "run 1 requoted",
                   run1.describe)  # fmt: skip
        run1.kill9()
        left = venue.live_orders()
        assert {m1, m2} <= set(left.values()), "the killed run left orders on both markets"
        held = venue.shares()
        assert (held[m1], held[m2]) == ((5 * QTY_ONE, 0), (0, filled_m2))

        # Run 2 quotes m2 and m3 (m1 is no longer selected).
        _, m3 = route(cache, ["m2", "m3"], emu.gamma_url, selected_markets_path(tmp_path))
        state2 = tmp_path / "state2"
        run2 = start(emu, cfg, key, "--state-dir", str(state2))
        procs.append(run2)
        kept = {oid for oid, m in left.items() if m == m2} if on_start == "adopt" else set()

        def clean() -> dict[str, str] | None:
            live = venue.live_orders()
            from_run1 = {oid for oid in live if oid in left}
            return live if from_run1 <= kept and quoting(venue, (m2, m3)) else None

        at_10s = wait_until(clean, 10.0, "only orders the new ledger knows", run2.describe)
        assert m1 not in at_10s.values()

        run2.signal(signal.SIGINT)
        assert run2.wait(60) == 0, run2.describe()
        assert venue.live_orders() == {}
        records = event_log(state2)
        # Every order of ours open at the venue 10 s after the restart was the new ledger's.
        assert set(at_10s) <= known_order_ids(records), run2.describe()
        startup = next(r for r in records if r["kind"] == "startup")
        if on_start == "adopt":
            assert (startup["adopted"], startup["canceled"]) == (len(kept), len(left) - len(kept))
        else:
            assert (startup["adopted"], startup["canceled"]) == (0, len(left))
        # The positions loaded at start are the venue's, and the first decision of every market
        # shows them (net YES).
        loaded = {
            r["market"]: (r["yes_qty"], r["no_qty"]) for r in records if r.get("event") == "position_loaded"
        }
        assert loaded == {m: held[m] for m in (m2, m3) if m in held}
        first = first_decisions(records)
        assert set(first) == {m2, m3}
        for m in (m2, m3):
            yes, no = held.get(m, (0, 0))
            assert first[m]["reasons"]["inventory_qty"] == yes - no
    finally:
        for p in procs:
            p.close()
        venue.close()


# --- a 429 with Retry-After: 300 --------------------------------------------------------------------------

CAP_S = 2.0  # ops.max_rate_limit_pause_s
#: From the first refusal to every quote cancelled: the cap, then the cancels (never held by the 429).
PULL_SLACK_S = 5.0


@pytest.mark.parametrize("refusal", ["venue-limiter", "cdn"])
def test_a_429_with_retry_after_300_pulls_every_quote_within_the_cap(emu, tmp_path, refusal):
    with quoting_m1_m2(emu, tmp_path, {"max_rate_limit_pause_s": CAP_S}) as run:
        venue, address = run.venue, run.venue.address
        if refusal == "venue-limiter":
            # The venue's limiter: both buckets emptied (the next cancel is a 429 too, saying 300 s),
            # and the order bucket refills only after minutes. Its 429s carry Poly-RateLimit-* headers.
            venue.rate_limits(enabled=True, retry_after_s=300, accounts={address: "trickle"}, drain=[address])

            def refused() -> int:
                return int(venue.limits()["refused"])
        else:
            # A 429 from in front of the venue (no rate-limit headers): every new order, for good.
            rule = venue.add_fault(
                {"kind": "http_status", "status": 429, "message": "Too Many Requests", "retry_after_s": 300,
                 "routes": ["POST /order", "POST /orders"]}
            )  # fmt: skip

            def refused() -> int:
                return next(int(r["fired"]) for r in venue.faults() if r["id"] == rule)

        # A fill: the bot wants to move its quotes, and its new orders meet the 429.
        venue.take("m1", "SELL", "0.49", size="5")
        wait_until(refused, 30, "a 429", run.proc.describe)
        first_429 = time.monotonic()
        wait_until(lambda: not venue.live_orders(), CAP_S + PULL_SLACK_S, "quotes pulled", run.proc.describe)
        pulled_s = time.monotonic() - first_429

        # Held, not frozen: it keeps running and heartbeating, and sends no new order meanwhile.
        posts = venue.order_posts()
        beats = venue.user()["heartbeats"]
        wait_until(lambda: venue.user()["heartbeats"] > beats, 30, "another heartbeat", run.proc.describe)
        assert run.proc.alive(), run.proc.describe()
        assert venue.live_orders() == {}
        assert venue.order_posts() == posts
        assert venue.user()["requests"].get("heartbeat_expired", 0) == 0

        run.proc.signal(signal.SIGINT)
        assert run.proc.wait(60) == 0, run.proc.describe()
    assert pulled_s <= CAP_S + PULL_SLACK_S
    # The process says why, in its log and in its event log.
    said = run.proc.err.text() + "".join(p.read_text() for p in tmp_path.rglob("*.log"))
    assert "pulling every quote: new orders held by the venue's rate limit for 2 s" in said, (
        run.proc.describe()
    )
    records = event_log(run.state)
    faults = [r for r in records if r["kind"] == "fault"]
    assert any(
        f["fault"] == "rate_limited" and f["request"] == "order" and f["retry_after_s"] == 300 for f in faults
    )
    assert any(f["fault"] == "rate_limit_pull" for f in faults)
    holds = {r["market"] for r in records if r["kind"] == "hold" and r["key"] == "rate_limit"}
    assert holds == set(run.markets)


# --- a shutdown the venue refuses ------------------------------------------------------------------------

REFUSE_CANCELS = {
    "kind": "http_status",
    "status": 425,
    "message": "service restarting",
    "routes": ["DELETE /order", "DELETE /orders", "DELETE /cancel-all", "DELETE /cancel-market-orders"],
}


@pytest.mark.parametrize(
    ("venue_state", "sig"),
    [("refusing-cancels", signal.SIGTERM), ("gone", signal.SIGINT)],
    ids=["425-sigterm", "gone-sigint"],
)
def test_a_shutdown_whose_cancels_fail_exits_3_naming_the_orders(emu, tmp_path, venue_state, sig):
    with quoting_m1_m2(emu, tmp_path) as run:
        if venue_state == "refusing-cancels":
            # The matching engine restarting: every cancel answers 425 until the test ends.
            run.venue.add_fault(REFUSE_CANCELS)
        else:
            emu.close()  # the venue is gone: nothing answers on its port
        run.proc.signal(sig)
        code = run.proc.wait(120)
    left = still_open(emu, run)
    assert left, "the venue refused every cancel: our orders are still open"
    err = run.proc.err.drained()
    assert code == EXIT_ORDERS_MAY_REMAIN, run.proc.describe()
    assert "Traceback" not in "".join(err)
    head = next((i for i, line in enumerate(err) if line.startswith("shutdown NOT confirmed:")), None)
    assert head is not None, run.proc.describe()
    named = {line.split()[0] for line in err[head + 1 :] if line.startswith("  0x")}
    assert err[head].startswith(f"shutdown NOT confirmed: {len(named)} orders of ours may still be open")
    if venue_state == "gone":
        # Every order the venue still has is named; so may be one whose cancel it took but could no
        # longer confirm (it went away before answering).
        assert left <= named
    else:
        assert named == left


def test_a_second_signal_while_the_venue_refuses_cancels_exits_3_within_5_s_naming_the_orders(emu, tmp_path):
    with quoting_m1_m2(emu, tmp_path) as run:
        run.venue.add_fault(REFUSE_CANCELS)
        run.proc.signal(signal.SIGINT)
        run.proc.err.wait_for("SIGINT: cancelling every order", 30)
        assert run.proc.alive()  # the orderly shutdown is retrying the refused cancels
        forced_at = time.monotonic()
        run.proc.signal(signal.SIGINT)
        code = run.proc.wait(30)
        forced_s = time.monotonic() - forced_at
    left = still_open(emu, run)
    assert left
    err = run.proc.err.drained()
    assert code == EXIT_ORDERS_MAY_REMAIN, run.proc.describe()
    assert forced_s < FORCE_EXIT_S
    assert "Traceback" not in "".join(err)
    head = next(i for i, line in enumerate(err) if line.startswith("forced exit:"))
    assert err[head].startswith(
        f"forced exit: cancel-all not confirmed (the venue still lists {len(left)} open orders of ours)"
    )
    named = {line.strip() for line in err[head + 1 :] if line.startswith("  0x")}
    assert named == left
    # The event log's last record says how the run ended, though it ended in os._exit.
    run_dir = latest_run_dir(run.state)
    assert run_dir is not None
    end = list(read_events(run_dir))[-1]
    assert end["kind"] == "run_end" and end["forced"] is True, end
    assert end["exit_code"] == EXIT_ORDERS_MAY_REMAIN and end["cancel_all"] == "not confirmed"
    assert set(end["orders_may_remain"]) == left
