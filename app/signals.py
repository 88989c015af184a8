"""SIGINT/SIGTERM for a trading run: the first asks for an orderly shutdown, a second forces a fast exit.

The first signal sets ``requested``: the run pulls every quote, the gateway cancels and confirms
every order, the summary is printed. A second signal (either kind) during a slow shutdown (a venue
answering cancels slowly, or not at all) forces a bounded exit: one cancel-all and one listing of
open orders on a thread of their own, given at most ``budget_s``, then ``os._exit`` within
``FORCE_EXIT_S`` of the signal whatever any other thread is doing (a watchdog makes sure of it).

Just before the exit, ``on_forced_exit`` (when set) gets the code and what the cancel-all showed: a
trading run writes them as its event log's last record (``run_end`` with ``forced: true``) and
flushes the log, within the same bound.

Exit codes of a forced exit: ``128 + signal`` (130 for SIGINT, 143 for SIGTERM) when the venue
listed no open order after the cancel-all, else ``EXIT_ORDERS_MAY_REMAIN`` (3), with one line saying
orders may remain open, then one line per order the venue still lists (its venue order id). Without a
venue (dry-run, paper) there is nothing to cancel: ``128 + signal``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, Final, TextIO

#: A forced exit ends this long after the second signal at the latest.
FORCE_EXIT_S: Final = 5.0
#: The cancel-all and the listing after it get this long before the process exits anyway.
CANCEL_BUDGET_S: Final = 4.0
#: Shutdown could not confirm that every order of ours is cancelled: orders may remain open.
EXIT_ORDERS_MAY_REMAIN: Final = 3

_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)


class ShutdownSignals:
    """Signal handling for one run; ``install()`` on the main thread, ``restore()`` when done.

    Args:
        cancel_all_now: The forced exit's one cancel-all (live only; may be set after
            construction): returns the venue ids of our orders the venue still lists afterwards
            (empty: none), or raises when it cannot tell.
        exit_now: Ends the process (``os._exit``; tests pass a recorder).
        on_forced_exit: Called with the exit code and ``forced_detail`` just before a forced exit
            (may be set after construction); whatever it raises is ignored: the exit goes on.
        budget_s: How long the forced exit waits for ``cancel_all_now``.
        stream: Where the one-line messages go.
    """

    def __init__(
        self,
        cancel_all_now: Callable[[], Sequence[str]] | None = None,
        *,
        exit_now: Callable[[int], object] = os._exit,
        budget_s: float = CANCEL_BUDGET_S,
        stream: TextIO | None = None,
        on_forced_exit: Callable[[int, dict[str, Any]], object] | None = None,
    ) -> None:
        self.cancel_all_now = cancel_all_now
        self.on_forced_exit = on_forced_exit
        #: What the forced exit's cancel-all showed (JSON-ready): its outcome, why, the orders left.
        self.forced_detail: dict[str, Any] = {}
        self.requested = threading.Event()
        self.count = 0
        self._exit_now = exit_now
        self._budget_s = budget_s
        self._stream = stream
        self._previous: dict[signal.Signals, object] = {}

    def install(self) -> None:
        """Handle SIGINT and SIGTERM from now on (main thread only)."""
        for s in _SIGNALS:
            self._previous[s] = signal.signal(s, self._on_signal)

    def restore(self) -> None:
        """Put the previous handlers back."""
        for s, handler in self._previous.items():
            signal.signal(s, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _say(self, line: str) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        try:
            stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stream must not stop the exit
            pass

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.count += 1
        name = signal.Signals(signum).name
        if self.count == 1:
            self._say(f"\n{name}: cancelling every order (send it again to force a fast exit)")
            self.requested.set()
        elif self.count == 2:
            self._say(f"{name} again: one cancel-all, then exit within {FORCE_EXIT_S:g} s")
            forcing = threading.Thread(target=self.force_exit, args=(signum,), name="polymm-force-exit")
            forcing.daemon = True
            forcing.start()
            watchdog = threading.Timer(FORCE_EXIT_S, self._exit_now, args=(EXIT_ORDERS_MAY_REMAIN,))
            watchdog.daemon = True
            watchdog.start()
        # Later signals: the forced exit is already under way.

    def force_exit(self, signum: int) -> None:
        """One cancel-all within the budget, one line, then end the process."""
        code = self.forced_exit_code(signum)
        hook = self.on_forced_exit
        if hook is not None:
            try:
                hook(code, self.forced_detail)
            except Exception as exc:  # the process is exiting: say it, never stop the exit
                self._say(f"forced exit: could not record the run's end ({type(exc).__name__}: {exc})")
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        self._exit_now(code)

    def forced_exit_code(self, signum: int) -> int:
        """Try the cancel-all (at most ``budget_s``) and say how it went; the exit code."""
        cancel = self.cancel_all_now
        name = signal.Signals(signum).name
        if cancel is None:
            self.forced_detail = {"signal": name, "cancel_all": "no venue"}
            return 128 + signum
        outcome: list[tuple[str, ...] | BaseException] = []

        def attempt() -> None:
            try:
                outcome.append(tuple(cancel()))
            except BaseException as exc:  # reported below; the process is exiting
                outcome.append(exc)

        worker = threading.Thread(target=attempt, name="polymm-cancel-all", daemon=True)
        worker.start()
        worker.join(self._budget_s)
        result = outcome[0] if outcome else None
        if result == ():
            self._say("forced exit: cancel-all done; the venue lists no open order of ours")
            self.forced_detail = {"signal": name, "cancel_all": "confirmed"}
            return 128 + signum
        remaining: tuple[str, ...] = ()
        if result is None:
            why = f"no answer within {self._budget_s:g} s"
        elif isinstance(result, tuple):
            remaining = result
            why = f"the venue still lists {len(remaining)} open orders of ours"
        else:
            why = " ".join(f"{type(result).__name__}: {result}".split())[:200]
        self._say(
            f"forced exit: cancel-all not confirmed ({why}): orders of ours may remain open on the venue"
            + (":" if remaining else "")
        )
        for order_id in remaining:
            self._say(f"  {order_id}")
        self.forced_detail = {
            "signal": name,
            "cancel_all": "not confirmed",
            "why": why,
            "orders_may_remain": list(remaining),
        }
        return EXIT_ORDERS_MAY_REMAIN
