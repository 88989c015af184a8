"""The emulator's network face and life cycle: CLOB REST, Gamma and both WebSocket channels on one
loopback port.

The parts, one file each: ``emulator.http`` (HTTP/1.1 framing, keep-alive, the hand-off of
``GET /ws/`` connections), ``emulator.routes`` (the REST routes, faults and controls),
``emulator.ws`` (the market and user channels). ``Emulator`` wires them to a ``Venue``: ``with
Emulator(scenario, seed, port=0) as emu: emu.clob_url, emu.ws_url, emu.gamma_url``. A background
thread steps the venue every ``scenario.step_ms``; ``close()`` stops everything and closes every
connection.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import socket
import threading
from pathlib import Path
from typing import Any

from websockets.sync.server import ServerConnection

from core.ports import Clock
from core.units import NS_PER_S
from emulator.auth import KeyStore
from emulator.chain import Chain
from emulator.http import HTTPServer
from emulator.routes import RestRoutes
from emulator.scenario import Scenario, load_scenario, resolve_scenario
from emulator.venue import Venue, WallClock
from emulator.ws import ShutdownFlag, WebSockets

__all__ = ["Emulator"]

logger = logging.getLogger(__name__)


class Emulator(RestRoutes, WebSockets):
    """The exchange emulator: a venue behind CLOB REST, Gamma and WebSocket endpoints.

    Args:
        scenario: A ``Scenario``, a scenario name in ``configs/emulator/`` or a YAML path.
        seed: Seed of the flow, the faults and the credentials; the scenario's ``seed`` when None.
        host: Address to bind; loopback by default.
        port: TCP port; 0 picks a free one (read it back from ``port``).
        clock: Time source (the wall clock by default).
        base_dir: Directory for relative replay paths (the scenario file's directory by default).
    """

    def __init__(
        self,
        scenario: Scenario | str | Path,
        seed: int | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        base_dir: Path | None = None,
    ) -> None:
        if not isinstance(scenario, Scenario):
            path = resolve_scenario(str(scenario))
            base_dir = base_dir or path.parent
            scenario = load_scenario(path)
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.clock: Clock = clock or WallClock()
        self.venue = Venue(scenario, self.seed, self.clock, base_dir)
        self.keys = KeyStore(hashlib.sha256(f"polymm-emulator-keys:{self.seed}".encode()).digest())
        #: ``POST /rpc``: the Polygon JSON-RPC calls of the official client's merge (``emulator.chain``).
        self.chain = Chain(self.venue, lambda: self.clock.now_ns() // NS_PER_S)
        self._httpd = HTTPServer((host, port), self, scenario.body_timeout_ms / 1000)
        self.host = str(self._httpd.server_address[0])
        self.port = int(self._httpd.server_address[1])
        self._stop = threading.Event()
        self._ws_flag = ShutdownFlag()
        self._ws_conns: set[ServerConnection] = set()
        self._ws_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._started = False
        self._routes = self._build_routes()
        self._reply_headers = threading.local()

    # --- life cycle ---------------------------------------------------------------------------------

    @property
    def clob_url(self) -> str:
        """CLOB REST root, e.g. ``http://127.0.0.1:8080``."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """WebSocket root; the channels are ``{ws_url}/market`` and ``{ws_url}/user``."""
        return f"ws://{self.host}:{self.port}/ws"

    @property
    def ws_market_url(self) -> str:
        """Market channel URL."""
        return f"{self.ws_url}/market"

    @property
    def ws_user_url(self) -> str:
        """User channel URL."""
        return f"{self.ws_url}/user"

    @property
    def rpc_url(self) -> str:
        """Polygon JSON-RPC URL (merges of YES+NO pairs; ``emulator.chain``)."""
        return f"{self.clob_url}/rpc"

    @property
    def gamma_url(self) -> str:
        """Gamma root (pass it as ``--gamma-url``)."""
        return f"{self.clob_url}/gamma"

    def start(self) -> Emulator:
        """Start serving and stepping in background threads; returns self."""
        if self._started:
            return self
        self._started = True
        serve = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="emulator-http",
            daemon=True,
        )
        step = threading.Thread(target=self._step_loop, name="emulator-step", daemon=True)
        self._threads = [serve, step]
        for t in self._threads:
            t.start()
        logger.info("emulator: serving %s (ws %s, gamma %s)", self.clob_url, self.ws_url, self.gamma_url)
        return self

    def close(self) -> None:
        """Stop stepping and serving, and close every connection (idempotent)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._httpd.closing = True  # before the WebSockets close: a client reacting must find it gone
        self._ws_flag.socket_closed.set()
        if self._started:
            self._httpd.shutdown()
        with self._ws_lock:
            conns = list(self._ws_conns)
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close(1001, "emulator shutting down")
        with self._httpd.sockets_lock:
            socks = list(self._httpd.open_sockets)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait(self) -> None:
        """Block until ``close()`` is called from another thread (or KeyboardInterrupt)."""
        while not self._stop.wait(0.5):
            pass

    def _step_loop(self) -> None:
        interval = self.scenario.step_ms / 1000
        while not self._stop.wait(interval):
            try:
                self.venue.step()
            except Exception:
                logger.exception("emulator: venue step failed")

    def status(self) -> dict[str, Any]:
        """What ``GET /emulator/status`` serves."""
        out = self.venue.status()
        with self._ws_lock:
            out["ws_connections"] = len(self._ws_conns)
        for info in out["users"].values():
            info["api_keys"] = (
                list(self.keys.keys_of(info["address"])) if info["address"].startswith("0x") else []
            )
        out["urls"] = {"clob": self.clob_url, "ws": self.ws_url, "gamma": self.gamma_url}
        return out
