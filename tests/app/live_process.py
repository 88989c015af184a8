"""A real ``polymm run-market-maker --mode live`` process against the exchange emulator, for end-to-end tests.

``LiveProcess`` starts the trading process as a subprocess (``python -m app.cli``, a throwaway key, a
temporary config with ``ops.dry_run: false``), reads its stdout and stderr on threads, and can
interrupt it (``signal``) or kill it outright (``kill9``: no cleanup runs). ``EmulatorControl`` drives
the emulator through its HTTP control endpoints (docs/emulator.md) and reads its own record of an
address's orders, trades and positions. ``event_log`` reads a run's event log wherever under its state
directory the run writes it (``events*.jsonl``).
"""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account

from adapters.market_cache import read_markets_file, write_markets_file
from app.cli import main

REPO = Path(__file__).resolve().parents[2]


def wait_until(
    predicate: Callable[[], Any],
    timeout_s: float,
    what: str,
    why: Callable[[], str] | None = None,
    poll_s: float = 0.05,
) -> Any:
    """Poll ``predicate`` until it returns something true (returned); fail naming ``what`` after the timeout.

    ``why`` adds what to show on a failure (e.g. the process's output then).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout_s:g} s" + (f"\n{why()}" if why else ""))
        time.sleep(poll_s)


class Lines:
    """A subprocess stream read on a thread; every line is kept."""

    def __init__(self, stream: io.TextIOBase) -> None:
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: io.TextIOBase) -> None:
        for line in stream:
            with self._lock:
                self._lines.append(line)

    @property
    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def text(self) -> str:
        return "".join(self.lines)

    def drained(self, timeout_s: float = 10.0) -> list[str]:
        """Every line, once the stream ended (the process exited)."""
        self._thread.join(timeout_s)
        return self.lines

    def wait_for(self, text: str, timeout_s: float) -> str:
        def found() -> str | None:
            return next((line for line in self.lines if text in line), None)

        try:
            return str(wait_until(found, timeout_s, f"{text!r} in the output"))
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last lines:\n{''.join(self.lines[-30:])}") from None


class LineQueue:
    """A subprocess stream read on a thread, consumed in order: each ``wait_for`` starts after the line
    the previous one matched, so a test waits for a sequence of lines, not on time."""

    def __init__(self, stream: io.TextIOBase) -> None:
        self.q: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: io.TextIOBase) -> None:
        for line in stream:
            self.q.put(line)

    def wait_for(self, text: str, timeout_s: float) -> str:
        """The next line containing ``text``; fail with the last lines seen after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.q.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} not seen in {timeout_s} s; got:\n{''.join(self.seen[-40:])}")

    def rest(self) -> list[str]:
        """Every line read so far, the ones no ``wait_for`` consumed included."""
        while True:
            try:
                self.seen.append(self.q.get_nowait())
            except queue.Empty:
                return self.seen


def live_config(tmp_path: Path, ops: dict[str, Any] | None = None, name: str = "live.yaml") -> Path:
    """``configs/market_maker.yaml``: state under ``tmp_path``, ``dry_run: false``, ``ops`` added."""
    text = (
        (REPO / "configs/market_maker.yaml").read_text().replace("local_state/", f"{tmp_path}/local_state/")
    )
    text = text.replace("dry_run: true", "dry_run: false")
    extra = "".join(f"  {k}: {json.dumps(v)}\n" for k, v in (ops or {}).items())
    text = text.replace("ops:\n", "ops:\n" + extra, 1)
    path = tmp_path / name
    path.write_text(text)
    return path


def selected_markets_path(tmp_path: Path) -> Path:
    """Where ``live_config`` points ``ops.selected_markets_path``."""
    return tmp_path / "local_state" / "market_maker" / "selected_markets.json"


def refresh_markets(emu_gamma_url: str, cfg: Path, tmp_path: Path) -> Path:
    """``polymm refresh-markets`` from the emulator's Gamma into a cache under ``tmp_path``."""
    cache = tmp_path / "cache.json"
    args = ["refresh-markets", "--config", str(cfg), "--skip-classify", "--skip-index"]
    assert main([*args, "--gamma-url", emu_gamma_url, "--markets-json-path", str(cache)]) == 0
    return cache


def route(cache: Path, slugs: Sequence[str], gamma_url: str, path: Path) -> list[str]:
    """Write a routed markets file (what ``route-markets`` writes) with the cache's markets ``slugs``.

    Returns their condition ids, in ``slugs`` order.
    """
    doc = read_markets_file(cache)
    by_slug = {e.market.slug: e for e in doc.markets}
    entries = [by_slug[s] for s in slugs]
    write_markets_file(
        path,
        kind="selected_markets",
        strategy="market_maker",
        entries=entries,
        generated_at=doc.generated_at,
        source={"market_cache": str(cache), "gamma_url": gamma_url, "fetched_at": doc.generated_at},
    )
    return [e.market.condition_id for e in entries]


class EmulatorControl:
    """The emulator's control endpoints and its record of one address (docs/emulator.md)."""

    def __init__(self, base_url: str, address: str) -> None:
        self.base = base_url.rstrip("/")
        self.address = address
        self._http = httpx.Client(timeout=10.0, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        r = self._http.request(method, self.base + path, json=body)
        r.raise_for_status()
        return r.json()

    def orders(self) -> list[dict[str, Any]]:
        """Every order of ours the emulator received, with its current status."""
        return list(self._json("GET", f"/emulator/orders?address={self.address}"))

    def live_orders(self) -> dict[str, str]:
        """Our orders open at the venue now: venue id -> condition id."""
        return {o["id"]: o["market"] for o in self.orders() if o["status"] == "LIVE"}

    def trades(self) -> list[dict[str, Any]]:
        return list(self._json("GET", f"/emulator/trades?address={self.address}"))

    def shares(self) -> dict[str, tuple[int, int]]:
        """YES and NO shares held per condition id (1e-6 shares), from the Data API v2 positions."""
        rows = self._json("GET", f"/data-api/v2/positions?user={self.address}&limit=500")["data"]
        held: dict[str, list[int]] = {}
        for r in rows:
            qty = round(float(r["current_size"]) * 1_000_000)
            held.setdefault(r["condition_id"], [0, 0])[int(r["outcome_index"])] += qty
        return {cid: (yes, no) for cid, (yes, no) in held.items()}

    def take(self, market: str, side: str, price: str, *, size: str = "", amount: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {"market": market, "side": side, "price": price}
        body.update({"size": size} if size else {"amount": amount})
        return dict(self._json("POST", "/emulator/take", body))

    def add_fault(self, rule: dict[str, Any]) -> int:
        return int(self._json("POST", "/emulator/faults", rule)["id"])

    def remove_faults(self) -> None:
        self._json("DELETE", "/emulator/faults")

    def rate_limits(self, **settings: Any) -> dict[str, Any]:
        return dict(self._json("POST", "/emulator/rate-limits", settings))

    def limits(self) -> dict[str, Any]:
        """``GET /emulator/rate-limits``: settings, buckets, ``refused`` (429s the limiter answered)."""
        return dict(self._json("GET", "/emulator/rate-limits"))

    def faults(self) -> list[dict[str, Any]]:
        """Every fault rule with its ``id`` and how often it ``fired``."""
        return list(self._json("GET", "/emulator/faults"))

    def order_posts(self) -> int:
        """Order requests (``POST /order``, ``POST /orders``) the venue received from us."""
        requests = self.user().get("requests", {})
        return int(requests.get("post_order", 0)) + int(requests.get("post_orders", 0))

    def settings(self, **settings: Any) -> dict[str, Any]:
        return dict(self._json("POST", "/emulator/settings", settings))

    def user(self) -> dict[str, Any]:
        """Our row of ``GET /emulator/status`` (request counters, heartbeats...)."""
        users = self._json("GET", "/emulator/status")["users"]
        return next((u for u in users.values() if u["address"].lower() == self.address.lower()), {})


class LiveProcess:
    """``polymm run-market-maker --mode live`` in a subprocess; ``close()`` kills it if still running."""

    def __init__(
        self,
        *,
        config: Path,
        key: str,
        clob_url: str,
        ws_url: str,
        gamma_url: str,
        extra_args: Iterable[str] = (),
    ) -> None:
        env = {
            **os.environ,
            "POLYMM_PRIVATE_KEY": key,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }
        for name in (
            "POLYMM_API_KEY",
            "POLYMM_API_SECRET",
            "POLYMM_API_PASSPHRASE",
            "POLYMM_PRIVATE_KEY_FILE",
        ):
            env.pop(name, None)
        cmd = [
            sys.executable, "-m", "app.cli", "run-market-maker", "--config", str(config), "--mode", "live",
            "--clob-url", clob_url, "--ws-url", ws_url, "--gamma-url", gamma_url, "--gamma-retries", "0",
            *extra_args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.started = time.monotonic()
        self.out = Lines(self.proc.stdout)  # type: ignore[arg-type]
        self.err = Lines(self.proc.stderr)  # type: ignore[arg-type]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def kill9(self) -> None:
        """SIGKILL: the process dies at once; no cancel, no heartbeat, nothing flushed."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def wait(self, timeout_s: float) -> int:
        return self.proc.wait(timeout_s)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def describe(self) -> str:
        """The tail of stdout and stderr, for failure messages."""
        return f"stdout:\n{''.join(self.out.lines[-20:])}\nstderr:\n{''.join(self.err.lines[-40:])}"


def new_key() -> tuple[str, str]:
    """A throwaway private key (hex) and its address."""
    acct = Account.create()
    return str(acct.key.hex()), str(acct.address)


def event_log(state_dir: Path) -> list[dict[str, Any]]:
    """Every record of the event logs under ``state_dir`` (``events*.jsonl``, wherever the run puts them)."""
    records = []
    for path in sorted(state_dir.rglob("events*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                records.append(json.loads(line))
    return records
