"""A headless Chromium driven over its DevTools protocol: load a page, collect errors, check, screenshot.

Debian's ``chromium`` package (``.ci/run`` installs it); nothing is downloaded. The flags are the ones
this machine needs (no sandbox as root, no GPU, no background connections: the network is closed),
and each browser gets a fresh profile directory.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def find_chromium() -> str | None:
    """The Chromium binary: ``$POLYMM_CHROMIUM``, else ``chromium`` / ``chromium-browser`` on the PATH."""
    env = os.environ.get("POLYMM_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageLoad:
    """What loading a page showed: errors of any kind, the result of a check script, a screenshot."""

    errors: list[str] = field(default_factory=list)
    check: Any = None
    screenshot: Path | None = None


def load_page(
    binary: str, url: str, profile: Path, screenshot: Path, check_js: str, timeout_s: float = 60.0
) -> PageLoad:
    """Open ``url`` in a fresh headless Chromium; return console errors, exceptions, failed loads,
    the value of ``check_js`` (an expression) and a full-page screenshot."""
    proc = subprocess.Popen(
        [binary, *FLAGS, f"--user-data-dir={profile}", "--window-size=1100,1200", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + timeout_s
        ws_url = None
        while ws_url is None:
            line = proc.stderr.readline()
            if not line:
                raise RuntimeError(f"chromium exited ({proc.wait()}) before its DevTools endpoint was up")
            m = _LISTENING.search(line)
            if m:
                ws_url = m.group(1)
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not open its DevTools endpoint")
        return _drive(ws_url, url, screenshot, check_js, deadline)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _drive(ws_url: str, url: str, screenshot: Path, check_js: str, deadline: float) -> PageLoad:
    out = PageLoad()
    ids = itertools.count(1)
    with connect(ws_url, max_size=None, open_timeout=30) as ws:
        events: list[dict[str, Any]] = []

        def call(method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
            n = next(ids)
            msg: dict[str, Any] = {"id": n, "method": method, "params": params or {}}
            if session:
                msg["sessionId"] = session
            ws.send(json.dumps(msg))
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no answer to {method}")
                reply = json.loads(ws.recv(timeout=left))
                if reply.get("id") == n:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
                events.append(reply)

        target = call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            call(f"{domain}.enable", session=session)
        call("Page.navigate", {"url": url}, session=session)
        while not any(e.get("method") == "Page.loadEventFired" for e in events):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{url} did not finish loading")
            events.append(json.loads(ws.recv(timeout=left)))
        result = call("Runtime.evaluate", {"expression": check_js, "returnByValue": True}, session=session)
        out.check = result.get("result", {}).get("value")
        shot = call(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=session
        )
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        out.screenshot = screenshot
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert", "warning"):
            out.errors.append(f"console.{p['type']}: {p.get('args')}")
        elif method == "Runtime.exceptionThrown":
            out.errors.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
            out.errors.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        elif method == "Network.loadingFailed":
            out.errors.append(f"load failed: {p.get('errorText')} {p.get('type')}")
        elif method == "Network.requestWillBeSent":
            req = p.get("request", {}).get("url", "")
            if not req.startswith(("file:", "data:", "about:")):
                out.errors.append(f"network request: {req}")
    return out
