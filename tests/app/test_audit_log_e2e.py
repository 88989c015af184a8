"""The live event log of a run reconciles with the emulator's own record of our orders and trades.

``run-market-maker --mode live`` against the exchange emulator on 127.0.0.1 (one market, a static
book far from our quotes, no flow): the test's takers fill our quotes (whole shares, a market BUY by
pUSD amount giving a 6-decimal fill, and a trade the emulator makes end FAILED); once every trade has
reached its final status in our log, SIGINT shuts the run down. Then the run's log is read back
(``adapters.runlog.read_events``) and compared with ``GET /emulator/orders?address=`` and
``GET /emulator/trades?address=``: every order the emulator has from us is in the log with its venue
order id, every trade leg with the same trade id, order id, size, price, role and fee, and final
status; nothing in the log is unknown to the emulator. No file the run wrote holds a secret.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from adapters.polymarket.sdk import environment_for
from adapters.polymarket.secrets import Secret, build_clob_client
from adapters.runlog import CONFIG_FILE, latest_run_dir, read_events
from app.cli import main
from core.units import QTY_ONE, parse_px, parse_qty, parse_usdc6
from emulator import Emulator
from emulator.scenario import FlowConfig, InitialBook, MarketConfig, Scenario

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

SLUG = "audit-market"
ENV = (
    "POLYMM_PRIVATE_KEY",
    "POLYMM_PRIVATE_KEY_FILE",
    "POLYMM_API_KEY",
    "POLYMM_API_SECRET",
    "POLYMM_API_PASSPHRASE",
)


def scenario() -> Scenario:
    # The seed's book at 0.42/0.58 leaves our quotes (about 0.49/0.51) alone at the top: a take
    # reaching 0.45 or 0.55 meets ours first.
    lot = 2_000 * QTY_ONE
    return Scenario(
        name="audit-log",
        seed=11,
        markets=(
            MarketConfig(
                slug=SLUG,
                question="Does the log reconcile?",
                initial_book=InitialBook(bids=((4_200, lot),), asks=((5_800, lot),)),
                flow=FlowConfig(enabled=False),
                volume_24h=50_000,
                liquidity_usdc=50_000,
                fee_rate_ppm=20_000,
            ),
        ),
        trade_mined_ms=50,
        trade_confirmed_ms=150,
        step_ms=10,
    )


def live_config(tmp_path: Path) -> Path:
    text = Path("configs/market_maker.yaml").read_text().replace("local_state/", f"{tmp_path}/local_state/")
    text = text.replace("dry_run: true", "dry_run: false\n  status_interval_s: 0.5")
    text = text.replace("max_spread_cents: 4", "max_spread_cents: 20")
    path = tmp_path / "live.yaml"
    path.write_text(text)
    return path


def wait_for(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := pred()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met in {timeout} s")
        time.sleep(0.05)
    return value


class Driver:
    """The test's side of the run, on a thread of its own: takers, then SIGINT when all is settled."""

    def __init__(self, emu: Emulator, wallet: str, state_dir: Path) -> None:
        self.emu, self.wallet, self.state_dir = emu, wallet, state_dir
        self.http = httpx.Client(base_url=emu.clob_url, timeout=10)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="audit-driver", daemon=True)

    def get(self, path: str) -> Any:
        return self.http.get(path, params={"address": self.wallet}).json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        reply = self.http.post(path, json=body)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def live_orders(self) -> list[dict[str, Any]]:
        return [o for o in self.get("/emulator/orders") if o["status"] == "LIVE"]

    def legs(self) -> list[dict[str, Any]]:
        return list(self.get("/emulator/trades"))

    def take(self, side: str, **size: str) -> None:
        # Wait until we quote the side it takes from (the bot requotes after each fill), then take at
        # our best price there: the book has other makers' orders behind ours, and a take that met
        # theirs while ours was being replaced would fill none of ours (and spend the fail-trades
        # rule on their trade). At our price it fills ours or nothing; nothing is tried again.
        want_bid = side == "SELL"

        def our_best() -> Decimal | None:
            yes_token = self.emu.venue.market_ids()[0]["yes_token"]
            prices = []
            for o in self.live_orders():
                # A YES bid is a BUY YES or a SELL NO; a YES ask a SELL YES or a BUY NO (YES terms).
                yes = o["asset_id"] == yes_token
                if ((o["side"] == "BUY") == yes) == want_bid:
                    px = Decimal(str(o["price"]))
                    prices.append(px if yes else 1 - px)
            if not prices:
                return None
            return max(prices) if want_bid else min(prices)

        for _ in range(20):
            price = wait_for(our_best, 30, f"our quote to take with a {side}")
            n = len(self.legs())
            reply = self.post("/emulator/take", {"market": SLUG, "side": side, "price": str(price), **size})
            if reply["trades"]:
                wait_for(lambda n=n: len(self.legs()) > n, 10, f"the {side} to fill us")
                return
            time.sleep(0.2)  # our quote moved meanwhile: take again at the new one
        raise AssertionError(f"the {side} met none of our quotes in 20 takes")

    def settled(self) -> bool:
        # Every trade of ours at its final status at the emulator, and in our log (read while written).
        legs = self.legs()
        if not legs or any(leg["status"] not in ("CONFIRMED", "FAILED") for leg in legs):
            return False
        run_dir = latest_run_dir(self.state_dir)
        if run_dir is None:
            return False
        log = list(read_events(run_dir))
        confirmed = {
            e["trade_id"]
            for e in log
            if e.get("event") in ("trade_status", "fill") and e["status"] == "CONFIRMED"
        }
        failed = {e["trade_id"] for e in log if e.get("event") == "trade_failed"}
        return all(leg["trade_id"] in (failed if leg["status"] == "FAILED" else confirmed) for leg in legs)

    def _run(self) -> None:
        try:
            self.take("SELL", size="5")  # 5 of our 10-share bid
            self.take("BUY", amount="5")  # a $5 market BUY: 6-decimal shares of our ask
            self.post("/emulator/fail-trades", {"next": 1})
            self.take("SELL", size="2.5")  # this one ends FAILED
            wait_for(self.settled, 30, "every trade at its final status, at the emulator and in our log")
            human_log = self.state_dir / "polymm.log"
            wait_for(
                lambda: " shares  pnl " in human_log.read_text(), 10, "a status line (stdout, and the log)"
            )
        except BaseException as exc:
            self.error = exc
        finally:
            os.kill(os.getpid(), signal.SIGINT)  # the orderly shutdown of a first Ctrl-C


@pytest.fixture
def clean_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def test_the_live_event_log_reconciles_with_the_emulators_record(tmp_path, capsys, monkeypatch, clean_env):
    acct = Account.create()
    key = acct.key.hex()
    monkeypatch.setenv("POLYMM_PRIVATE_KEY", key)
    state_dir = tmp_path / "local_state" / "market_maker"
    with Emulator(scenario(), port=0) as emu:
        driver = Driver(emu, acct.address, state_dir)
        driver.thread.start()
        code = main(
            [
                "run-market-maker",
                "--config",
                str(live_config(tmp_path)),
                "--mode",
                "live",
                "--duration",
                "120",
                "--clob-url",
                emu.clob_url,
                "--ws-url",
                emu.ws_market_url,
                "--gamma-url",
                emu.gamma_url,
            ]
        )
        driver.thread.join(10)
        out, err = capsys.readouterr()
        assert driver.error is None, driver.error
        assert code == 0, out + err
        emu_orders = driver.get("/emulator/orders")
        emu_legs = driver.legs()
        market = emu.venue.market_ids()[0]
        client, creds = build_clob_client(environment_for(emu.clob_url), Secret(key))  # the run's, derived
        client.close()

    run_dir = latest_run_dir(state_dir)
    assert run_dir is not None
    log = list(read_events(run_dir))

    # The header: what ran, for whom, on what.
    head = log[0]
    assert head["kind"] == "run" and head["mode"] == "live" and head["wallet"] == acct.address
    assert head["config_sha256"] == hashlib.sha256((run_dir / CONFIG_FILE).read_bytes()[:-1]).hexdigest()
    [m] = head["markets"]
    assert (m["market"], m["yes_token"], m["no_token"]) == (
        market["market"],
        market["yes_token"],
        market["no_token"],
    )
    assert log[1]["kind"] == "units" and log[-1]["kind"] == "run_end" and log[-1]["exit_code"] == 0

    # Orders: the log's venue order ids are exactly the emulator's, each accepted one said so.
    sent = {e["order_id"]: e["client_id"] for e in log if e["kind"] == "order_sent"}
    accepted = {e["order_id"] for e in log if e["kind"] == "accepted"}
    assert set(sent) == {o["id"] for o in emu_orders}
    assert {o["id"] for o in emu_orders if o["status"] != "REJECTED"} <= accepted <= set(sent)

    # Trades: every leg of ours, leg by leg, with the same ids, size, price, role, fee and final status.
    fills = {(e["trade_id"], e["order_id"]): e for e in log if e.get("event") == "fill"}
    assert set(fills) == {(leg["trade_id"], leg["order_id"]) for leg in emu_legs}
    statuses: dict[str, set[str]] = defaultdict(set)
    for e in log:
        if e.get("event") in ("fill", "trade_status"):
            statuses[e["trade_id"]].add(e["status"])
        if e.get("event") == "trade_failed":
            statuses[e["trade_id"]].add("FAILED")
    for leg in emu_legs:
        ours = fills[(leg["trade_id"], leg["order_id"])]
        assert ours["qty"] == parse_qty(leg["size"]) and ours["px"] == parse_px(leg["price"])
        assert ours["liquidity"] == leg["role"].lower()
        assert ours["fee_usdc6"] == parse_usdc6(leg["fee_usdc"])
        assert leg["status"] in statuses[leg["trade_id"]]
    assert sorted(leg["status"] for leg in emu_legs) == ["CONFIRMED", "CONFIRMED", "FAILED"]
    assert any(f["qty"] % 10_000 for f in fills.values())  # a 6-decimal fill among them
    # Each order's fills add up to what the emulator matched (a FAILED trade stays matched there).
    matched: dict[str, int] = defaultdict(int)
    for (_, order_id), f in fills.items():
        matched[order_id] += f["qty"]
    for o in emu_orders:
        if o["status"] != "REJECTED":
            assert matched.get(o["id"], 0) == parse_qty(o["size_matched"]), o
    # The sessions saw every fill (the market's own "fill" records), the failed one reversed.
    session_fills = {(e["trade_id"], e["client_id"], e["qty"]) for e in log if e["kind"] == "fill"}
    for (trade_id, order_id), f in fills.items():
        assert (trade_id, sent[order_id], f["qty"]) in session_fills
    failed = [leg for leg in emu_legs if leg["status"] == "FAILED"]
    assert (
        failed[0]["trade_id"] + ":failed",
        sent[failed[0]["order_id"]],
        parse_qty(failed[0]["size"]),
    ) in session_fills
    # Nothing is left open, and the log says how each order ended.
    assert not [o for o in emu_orders if o["status"] == "LIVE"]
    canceled = {e["client_id"] for e in log if e["kind"] == "canceled"}
    for o in emu_orders:
        if o["status"] == "CANCELED":
            assert sent[o["id"]] in canceled

    # stdout: status lines with their units, no HTTP request lines anywhere.
    assert any(
        " pos " in line and " shares  pnl " in line and " USDC" in line for line in out.splitlines()
    ), out
    assert "HTTP Request" not in out + err

    # No secret in any file the run wrote (the run directory and the human log).
    secrets = [key, key.removeprefix("0x"), creds.api_key, creds.secret.reveal(), creds.passphrase.reveal()]
    files = [p for p in run_dir.rglob("*") if p.is_file()] + [
        tmp_path / "local_state" / "market_maker" / "polymm.log"
    ]
    for path in files:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        for secret in secrets:
            assert secret.encode() not in data, f"a secret in {path}"
