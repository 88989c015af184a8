"""What a session shows people: the status line, its timing, the human log file and stderr."""

from __future__ import annotations

import io
import logging
import threading

import pytest

from actors.market import Status
from app.console import QUIET_LOGGERS, setup_logging, status_line, status_lines, wait_reporting

NS = 1_000_000_000


def status(**kw: object) -> Status:
    base: dict[str, object] = {
        "market": "0x4d87dadcb998f5991a861cf86cd7428a7db374938973d8f47ab464aff6dc33a1",
        "book_valid": True,
        "yes_qty": 10_000_000,
        "no_qty": 2_424_242,
        "cash_usdc6": -3_000_000,
        "open_orders": 6,
        "exposure_usdc6": 0,
        "decisions": 3,
        "fills": 2,
        "last_quote": True,
        "last_bids": ((4_800, 10_000_000), (4_700, 20_000_000)),
        "last_asks": ((5_300, 10_000_000),),
        "skewed_mid_px": 5_000,
        "wakeup_ns": 0,
        "best_bid_px": 4_900,
        "best_ask_px": 5_200,
        "book_age_ns": 1_250_000_000,
        "pnl_usdc6": -123_456,
        "state": "quoting",
    }
    base.update(kw)
    return Status(**base)  # type: ignore[arg-type]


def test_the_status_line_gives_every_number_with_its_unit():
    line = status_line(status())

    assert line == (
        "0x4d87dadcb9 quoting  pos +7.575758 shares  pnl -0.12 USDC  orders 6  book 0.49/0.52 USDC"
        "  ours 0.48/0.53 USDC  feed 1.2 s"
    )


def test_the_status_line_of_a_market_without_book_or_quotes_says_so():
    line = status_line(
        status(
            yes_qty=0,
            no_qty=5_000_000,
            best_bid_px=None,
            best_ask_px=None,
            book_age_ns=None,
            pnl_usdc6=None,
            last_bids=(),
            last_asks=(),
            state="no_book",
        )
    )

    assert "no_book  pos -5 shares  pnl ? USDC" in line
    assert "book -/- USDC  ours -/- USDC  feed -" in line


def test_a_status_block_is_a_time_then_one_line_per_market_in_order():
    lines = status_lines([status(market="0xbb"), status(market="0xaa")], 1_767_225_605 * NS)

    assert lines[0] == "status 00:00:05Z: 2 markets"
    assert [line.split()[0] for line in lines[1:]] == ["0xaa", "0xbb"]


class FakeTime:
    """A monotonic clock that moves only when the stop event is waited on."""

    def __init__(self, stop_at_s: float | None = None) -> None:
        self.now_s = 100.0
        self.stop_at_s = stop_at_s

    def monotonic(self) -> float:
        return self.now_s


class FakeStop(threading.Event):
    def __init__(self, clock: FakeTime) -> None:
        super().__init__()
        self.clock = clock
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        assert timeout is not None, "an endless wait in a test"
        target = self.clock.now_s + timeout
        if self.clock.stop_at_s is not None and self.clock.stop_at_s <= target:
            self.clock.now_s = self.clock.stop_at_s
            self.set()
            return True
        self.clock.now_s = target
        return False


def test_a_status_every_interval_until_the_duration_ends():
    clock = FakeTime()
    stop, reports = FakeStop(clock), []

    stopped = wait_reporting(stop, 25.0, 10.0, lambda: reports.append(clock.now_s), monotonic=clock.monotonic)

    assert not stopped
    assert reports == [110.0, 120.0]  # not at the end: the summary follows
    assert clock.now_s == 125.0


def test_a_signal_ends_the_wait_at_once():
    clock = FakeTime(stop_at_s=133.0)
    stop, reports = FakeStop(clock), []

    stopped = wait_reporting(stop, None, 10.0, lambda: reports.append(clock.now_s), monotonic=clock.monotonic)

    assert stopped and reports == [110.0, 120.0, 130.0] and clock.now_s == 133.0


def test_interval_zero_never_reports_and_a_failing_report_does_not_stop_the_run(caplog):
    clock = FakeTime()
    stop = FakeStop(clock)
    assert not wait_reporting(stop, 30.0, 0.0, lambda: pytest.fail("reported"), monotonic=clock.monotonic)
    assert stop.waits == [30.0]

    clock2 = FakeTime()
    calls = []

    def broken() -> None:
        calls.append(clock2.now_s)
        raise RuntimeError("actor gone")

    wait_reporting(FakeStop(clock2), 21.0, 10.0, broken, monotonic=clock2.monotonic)
    assert calls == [110.0, 120.0]
    assert "status report failed" in caplog.text


def test_the_human_log_takes_info_stderr_takes_warnings_and_http_lines_go_nowhere(tmp_path):
    err = io.StringIO()
    path = tmp_path / "logs" / "polymm.log"
    before = {n: logging.getLogger(n).level for n in ("", *QUIET_LOGGERS)}
    restore = setup_logging(path, 10_000, stderr=err)
    try:
        logging.getLogger("polymm.live").info("positions agree again")
        logging.getLogger("polymm.live").warning("cancelling 2 open orders of ours")
        for name in QUIET_LOGGERS:
            logging.getLogger(name).info('HTTP Request: POST http://127.0.0.1/order "HTTP/1.1 200 OK"')
        logging.getLogger("httpx").warning("connection pool full")
        logging.getLogger("polymarket.streams").error("stream connection lost")
    finally:
        restore()
    logging.getLogger("polymm.live").warning("after restore")

    text = path.read_text()
    assert "INFO polymm.live [MainThread]: positions agree again" in text
    assert "WARNING polymm.live [MainThread]: cancelling 2 open orders of ours" in text
    assert "HTTP Request" not in text and "HTTP Request" not in err.getvalue()
    assert err.getvalue().splitlines() == [
        "WARNING polymm.live: cancelling 2 open orders of ours",
        "WARNING httpx: connection pool full",
    ]
    assert "ERROR polymarket.streams [MainThread]: stream connection lost" in text
    assert "after restore" not in text
    assert {n: logging.getLogger(n).level for n in before} == before


def test_the_human_log_rolls_over_past_its_size(tmp_path):
    path = tmp_path / "polymm.log"
    restore = setup_logging(path, 2_000, stderr=io.StringIO(), backups=3)
    try:
        for n in range(200):
            logging.getLogger("polymm").info("line %d of the human log", n)
    finally:
        restore()

    rolled = sorted(p.name for p in tmp_path.iterdir())
    assert rolled == ["polymm.log", "polymm.log.1", "polymm.log.2", "polymm.log.3"]
    assert all(p.stat().st_size <= 2_000 for p in tmp_path.iterdir())
    assert "line 199 of the human log" in path.read_text()
