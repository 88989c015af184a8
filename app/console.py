"""What a trading session shows people: the human log file, stderr, and a status line per market.

* **The human log** (``ops.log_path``): Python logging at INFO and up, with UTC timestamps, rolled
  over past ``ops.log_rotate_mb`` (``HUMAN_LOG_BACKUPS`` old files kept: ``polymm.log.1`` ...).
  It spans runs; each run's first line names its run directory. The logging thread only queues a
  record; a listener thread writes the file and stderr.
* **stderr**: warnings and errors only (not the venue SDK's own per-request errors: polymm retries or
  reports those in its own words; they are in the file).
* **stdout**: what the command prints (the start-up lines, the summary) and, every
  ``ops.status_interval_s``, one line per market (``status_line``).

The HTTP and WebSocket libraries log every request at INFO (``httpx``: ``HTTP Request: POST ...``):
they are held at WARNING (``QUIET_LOGGERS``), so neither the screen nor the log file fills with them.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TextIO

import msgspec

from actors.market import Status
from app.commands.control import reward_text
from core.units import NS_PER_S, format_px, format_qty

#: Libraries whose INFO lines are per request: WARNING and up only, on screen and in the file.
QUIET_LOGGERS: Final = ("httpx", "httpcore", "urllib3", "websockets", "hpack", "h2")
#: Libraries that log failed requests as errors although polymm handles them (retries, or says what
#: went wrong in its own words): to the file only, never on stderr. The venue's SDK logs requests only
#: to a logger it is given (polymm gives none); its stream modules log to ``polymarket.*``.
FILE_ONLY_LOGGERS: Final = ("polymarket",)
#: Rolled-over human logs kept next to ``ops.log_path``.
HUMAN_LOG_BACKUPS: Final = 10
FILE_FORMAT: Final = "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s [%(threadName)s]: %(message)s"
DATE_FORMAT: Final = "%Y-%m-%dT%H:%M:%S"
STDERR_FORMAT: Final = "%(levelname)s %(name)s: %(message)s"

log = logging.getLogger("polymm.status")


def _utc_formatter(fmt: str, datefmt: str) -> logging.Formatter:
    f = logging.Formatter(fmt, datefmt)
    f.converter = time.gmtime
    return f


def setup_logging(
    log_path: Path, rotate_bytes: int, *, stderr: TextIO | None = None, backups: int = HUMAN_LOG_BACKUPS
) -> Callable[[], None]:
    """Send INFO and up to ``log_path`` (rolled over past ``rotate_bytes``), WARNING and up to stderr.

    Returns a function that undoes it (handlers removed and closed, levels as they were).

    Raises:
        OSError: ``log_path`` cannot be opened for appending.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    file_handler = logging.handlers.RotatingFileHandler(
        log_path, maxBytes=rotate_bytes, backupCount=backups, encoding="utf-8"
    )
    file_handler.setLevel(logging.INFO)
    file_handler.setFormatter(_utc_formatter(FILE_FORMAT, DATE_FORMAT))
    screen = logging.StreamHandler(stderr if stderr is not None else sys.stderr)
    screen.setLevel(logging.WARNING)
    screen.setFormatter(logging.Formatter(STDERR_FORMAT))
    screen.addFilter(_not_file_only)
    # The thread that logs only queues the record: the file (and stderr) are written by a listener
    # thread, so a trading thread never waits on the disk or on a roll-over.
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    enqueue = logging.handlers.QueueHandler(records)
    listener = logging.handlers.QueueListener(records, file_handler, screen, respect_handler_level=True)
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *QUIET_LOGGERS)}
    root.setLevel(logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    listener.start()
    root.addHandler(enqueue)

    def restore() -> None:
        root.removeHandler(enqueue)
        listener.stop()  # writes what is queued first
        file_handler.close()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)

    return restore


def _not_file_only(record: logging.LogRecord) -> bool:
    return not any(record.name == n or record.name.startswith(n + ".") for n in FILE_ONLY_LOGGERS)


# --- the status line --------------------------------------------------------------------------------


def _px(px: int | None) -> str:
    return "-" if px is None else format_px(px)


def _signed_qty(qty: int) -> str:
    text = format_qty(qty)
    return text if qty <= 0 else "+" + text


def status_line(st: Status, *, market_chars: int = 12) -> str:
    """One market's status for people, each number with its unit.

    ``0x4d87dadcb9 quoting  pos +10 shares  pnl +0.12 USDC  orders 6  book 0.48/0.52 USDC
    ours 0.49/0.51 USDC  feed 0.3 s``. Position is net YES shares (NO counts short), PnL against the
    cost basis with shares marked at the mid, ``book`` the YES best bid/ask, ``ours`` our best
    quotes (``-``: none on that side), ``feed`` the age of the book's data.
    """
    pnl = "?" if st.pnl_usdc6 is None else f"{st.pnl_usdc6 / 1e6:+.2f}"
    bid = st.last_bids[0][0] if st.last_bids else None
    ask = st.last_asks[0][0] if st.last_asks else None
    feed = "-" if st.book_age_ns is None else f"{st.book_age_ns / NS_PER_S:.1f} s"
    return (
        f"{st.market[:market_chars]} {st.state or '?'}  pos {_signed_qty(st.yes_qty - st.no_qty)} shares"
        f"  pnl {pnl} USDC  orders {st.open_orders}"
        f"  book {_px(st.best_bid_px)}/{_px(st.best_ask_px)} USDC  ours {_px(bid)}/{_px(ask)} USDC"
        f"  feed {feed}"
    )


def status_lines(
    statuses: Iterable[Status], now_ns: int, rewards: Mapping[str, Any] | None = None
) -> list[str]:
    """A status block: a time line (UTC), then one line per market, in market order.

    ``rewards`` (``app.rewards.RewardTracker.snapshot``): a tracked market's line ends with its
    reward tracking (``app.commands.control.reward_text``).
    """
    stamp = datetime.fromtimestamp(now_ns // NS_PER_S, UTC).strftime("%H:%M:%SZ")
    rows = sorted(statuses, key=lambda s: s.market)
    tracked = rewards or {}
    lines = [f"status {stamp}: {len(rows)} markets"]
    for s in rows:
        r = tracked.get(s.market)
        lines.append(
            "  " + status_line(s) + ("" if r is None else "  " + reward_text(msgspec.to_builtins(r)))
        )
    return lines


def wait_reporting(
    stop: threading.Event,
    duration_s: float | None,
    interval_s: float,
    report: Callable[[], None],
    *,
    monotonic: Callable[[], float] = time.monotonic,
) -> bool:
    """Wait until ``stop`` is set or ``duration_s`` has passed, calling ``report`` every ``interval_s``.

    ``interval_s`` 0 never reports; ``duration_s`` None waits for ``stop`` alone. A report that
    raises is logged and the wait goes on. True when ``stop`` ended the wait.
    """
    deadline = None if duration_s is None else monotonic() + duration_s
    while True:
        left = None if deadline is None else deadline - monotonic()
        if left is not None and left <= 0:
            return stop.is_set()
        step = left if interval_s <= 0 else (interval_s if left is None else min(interval_s, left))
        if stop.wait(step):
            return True
        if interval_s > 0 and (deadline is None or monotonic() < deadline):
            try:
                report()
            except Exception:
                log.exception("status report failed")
