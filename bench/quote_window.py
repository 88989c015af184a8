"""Instructions per quote window: callgrind's count from decoding a feed message to handing its orders over.

The tick-to-quote path of ``bench/tick_to_quote.py`` (the same workload, markets and sessions, built
as ``app.bootstrap.TradingEngine`` builds them: the feed's ``MarketWsClient`` on the actors'
``ActorLoop``, the engine's ``FrameDispatcher`` and ``Router``, one ``LoopMarketActor`` per market,
the sessions on the loop's ``InputClock``, a dry-run port) without the WebSocket: each
``price_change`` message is handed to the client as if just received (``replay_frame``), one per
loop callback, so the acknowledgements of one message are handled before the next, as between two
frames of a connection. Wall time does not pace anything: the running clock is a stand-in stepping
``--step-us`` per message, so which messages quote (the 250 ms requote throttle) is the same on every
run and every tree.

A quote window starts when the client starts decoding a message and ends when that message's
orders are handed to the port (``ExchangePort.submit``); a message that quotes nothing is no
window. Under callgrind, a small C shim (built at run time with the system's C compiler from
valgrind's ``callgrind.h``, into a temporary directory) zeroes callgrind's counters at each start and
dumps them at each end; the script reads the dumps and prints the median instructions per window
(and the quartiles), so two trees can be compared by one number that does not move with the load
of a shared machine. ``--hot`` runs without valgrind and prints the median wall time of a window
instead (back to back, no idle wake-ups: noisy, for a quick look only); ``--profile N``, the Python
functions the windows spend most in (cProfile, on during the windows only).

Usage: ``python bench/quote_window.py [--messages N] [--warmup N] [--changes 1|4] [--keep DIR]
[--save FILE] [--against FILE]`` (``just quote-window``); a run takes two or three minutes under
callgrind. To compare two trees, ``--save`` the counts of one and run the other ``--against`` them:
the windows pair up (the same messages quote on both), and the median of their differences is
steadier than the difference of the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import ctypes
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_SHIM_C = r"""
#include <valgrind/callgrind.h>
int qw_running(void) { return RUNNING_ON_VALGRIND; }
void qw_zero(void) { CALLGRIND_ZERO_STATS; }
void qw_dump(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }
"""


def build_shim(directory: Path) -> Path:
    """Compile the callgrind client-request shim into ``directory``; returns the shared library."""
    src, lib = directory / "qw_shim.c", directory / "qw_shim.so"
    src.write_text(_SHIM_C)
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    return lib


class _SteppedClock:
    """The running clock's stand-in: moves only when the driver steps it (once per message)."""

    def __init__(self, t_ns: int) -> None:
        self.t_ns = t_ns

    def now_ns(self) -> int:
        return self.t_ns


class Meter:
    """What is done at each end of a quote window: wall time here (``--hot``)."""

    def __init__(self) -> None:
        self.t0_ns = 0
        self.windows: list[int] = []

    def start(self) -> None:
        self.t0_ns = time.perf_counter_ns()

    def end(self) -> None:
        self.windows.append(time.perf_counter_ns() - self.t0_ns)


class CallgrindMeter(Meter):
    """Zero callgrind's counters at the start, dump them at the end (the dumps hold the counts)."""

    def __init__(self, shim: ctypes.CDLL) -> None:
        super().__init__()
        self.shim = shim

    def start(self) -> None:
        self.shim.qw_zero()

    def end(self) -> None:
        self.shim.qw_dump(b"quote window")
        self.windows.append(0)


class ProfileMeter(Meter):
    """cProfile on during the windows only: which Python functions a window runs, and how often."""

    def __init__(self) -> None:
        super().__init__()
        self.profile = cProfile.Profile()

    def start(self) -> None:
        self.profile.enable()

    def end(self) -> None:
        self.profile.disable()
        self.windows.append(0)


def run_windows(meter: Meter, messages: int, warmup: int, changes: int, step_us: int, markets_n: int) -> None:
    """Drive the path; ``meter`` starts at each window's first decode and ends at its orders' hand-over."""
    import msgspec
    from tick_to_quote import workload  # bench/ is on sys.path when run as a script

    from actors.dispatch import FrameDispatcher
    from actors.loop import ActorLoop, InputClock
    from actors.market import LatencyHistogram, LoopMarketActor
    from actors.session import MarketSession
    from actors.supervisor import Router
    from adapters.paper import DryRunPort
    from adapters.polymarket.parse import AssetMap
    from adapters.polymarket.ws_market import MarketWsClient, MarketWsConfig
    from adapters.runlog import JsonlFileSink
    from app.bootstrap import tune_gc_for_latency
    from app.configfile import load_config
    from core.messages import Command
    from core.quoting import quote_params

    cfg = load_config("configs/market_maker.yaml")
    # As bench/tick_to_quote.py: the shipped throttle, no price tolerance, the feed vouches for books.
    params = msgspec.structs.replace(quote_params(cfg), max_book_age_ns=0, requote_px_tolerance_ticks=0)
    markets, opening, stream = workload(markets_n, warmup + messages, 5, changes)
    base = _SteppedClock(1_790_000_000_000_000_000)
    clock = InputClock(base)
    window = {"open": False}

    class Port(DryRunPort):
        def submit(self, commands: Sequence[Command]) -> None:
            if window["open"]:
                window["open"] = False
                meter.end()
            super().submit(commands)

    class Feed(MarketWsClient):
        measuring = False

        def _on_message(self, frame: str | bytes) -> None:
            if self.measuring:
                window["open"] = True
                meter.start()
            super()._on_message(frame)
            if window["open"]:  # no quote: no window
                window["open"] = False
                if isinstance(meter, ProfileMeter):
                    meter.profile.disable()

    router = Router()
    feed = Feed(
        AssetMap.from_markets(markets),
        lambda ev: None,
        config=MarketWsConfig(snapshot_timeout_s=None, proxy=None),
        on_batch=FrameDispatcher(router),
        input_scope=clock,
    )
    tmp = tempfile.TemporaryDirectory(prefix="polymm-qw-")
    sink = JsonlFileSink(Path(tmp.name) / "events.jsonl")
    loop = ActorLoop("polymm-market", clock=clock)
    loop.start()
    histogram = LatencyHistogram(base)
    refs = []
    for m in markets:
        session = MarketSession(m, params, Port(m.market, router.tell, clock), clock, sink)
        session.quote_latency = histogram
        ref = LoopMarketActor.start(session, actor_loop=loop)
        router.set(m.market, ref)
        refs.append(ref)
    step_ns = step_us * 1_000

    async def drive() -> None:
        for frame in opening:
            feed.replay_frame(frame)
            await asyncio.sleep(0)
        for k, frame in enumerate(stream):
            base.t_ns += step_ns
            feed.measuring = k >= warmup
            feed.replay_frame(frame)
            await asyncio.sleep(0)  # the acknowledgements it caused are handled before the next
        feed.measuring = False

    tune_gc_for_latency()
    loop.run_coroutine(drive()).result(timeout=3_600)
    for ref in refs:
        ref.stop()
    loop.stop()
    sink.close()
    tmp.cleanup()
    status = feed.status()
    assert status.skipped == 0 and status.dropped_deltas == 0, status


def _dump_totals(directory: Path, pid: int) -> list[int]:
    # One file per CALLGRIND_DUMP_STATS and thread ("<out>.<pid>.<n>-<thread>"), each with its
    # "totals:" line. Only the loop's thread counts (the one running asyncio's task steps): the other
    # threads (the event log's writer) run when the interpreter lets them, not on the path.
    totals: list[tuple[int, int]] = []
    for f in directory.glob(f"callgrind.out.{pid}.*-*"):
        n = int(f.name.rsplit(".", 1)[1].split("-")[0])
        text = f.read_text()
        if "quote window" not in text.split("events:", 1)[0] or "task_step" not in text:
            continue
        for line in text.splitlines():
            if line.startswith(("totals:", "summary:")):
                totals.append((n, int(line.split()[1])))
                break
    return [t for _, t in sorted(totals)]


def _summary(values: list[int], unit: str) -> dict[str, Any]:
    values = sorted(values)
    q = statistics.quantiles(values, n=4) if len(values) >= 2 else [values[0]] * 3
    return {
        "windows": len(values),
        f"median_{unit}": round(statistics.median(values)),
        f"q1_{unit}": round(q[0]),
        f"q3_{unit}": round(q[2]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Prints one JSON line: the windows counted and the median (and quartiles) per window.",
    )
    parser.add_argument("--messages", type=int, default=400, help="price_change messages measured [400]")
    parser.add_argument("--warmup", type=int, default=200, help="messages handled first, unmeasured [200]")
    parser.add_argument(
        "--changes", type=int, choices=(1, 4), default=1, help="level changes per message (4: stress) [1]"
    )
    parser.add_argument(
        "--step-us",
        type=int,
        default=5_000,
        help="running clock step per message, us [5000: each market's next message is past the throttle]",
    )
    parser.add_argument("--markets", type=int, default=50, help="markets [50]")
    parser.add_argument("--hot", action="store_true", help="no valgrind: median wall ns per window (noisy)")
    parser.add_argument(
        "--profile",
        type=int,
        metavar="N",
        help="no valgrind: the N Python functions with the most own time in the windows (cProfile)",
    )
    parser.add_argument("--keep", type=Path, help="keep callgrind's dumps in this directory")
    parser.add_argument("--save", type=Path, help="write the count of every window to this JSON file")
    parser.add_argument(
        "--against",
        type=Path,
        help="another tree's --save file (same options): also the median of the windows' differences",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = parser.parse_args(argv)
    root = Path(__file__).resolve().parent.parent
    os.chdir(root)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    args = (a.messages, a.warmup, a.changes, a.step_us, a.markets)
    if a.hot:
        meter = Meter()
        run_windows(meter, *args)
        print(json.dumps(_summary(meter.windows, "ns")))
        return 0
    if a.profile:
        profiler = ProfileMeter()
        run_windows(profiler, *args)
        print(f"{len(profiler.windows)} quote windows")
        pstats.Stats(profiler.profile).sort_stats("tottime").print_stats(a.profile)
        return 0
    if a.child:  # under callgrind: the shim's path is in the environment
        shim = ctypes.CDLL(os.environ["POLYMM_QW_SHIM"])
        if not shim.qw_running():
            raise SystemExit("--child runs under valgrind only")
        shim.qw_dump.argtypes = [ctypes.c_char_p]
        cg = CallgrindMeter(shim)
        run_windows(cg, *args)
        print(json.dumps({"windows": len(cg.windows)}))
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (or use --hot)")
    with tempfile.TemporaryDirectory(prefix="polymm-qw-cg-") as tmp:
        out = a.keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        shim_path = build_shim(Path(tmp))
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}/callgrind.out.%p",
            "--dump-instr=no",
            "--dump-line=no",
            "--separate-threads=yes",
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            *("--messages", str(a.messages), "--warmup", str(a.warmup), "--changes", str(a.changes)),
            *("--step-us", str(a.step_us), "--markets", str(a.markets)),
        ]
        env = os.environ | {"POLYMM_QW_SHIM": str(shim_path), "PYTHONPATH": str(root)}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-4_000:])
            return proc.returncode
        pid = int(proc.stderr.split("==", 2)[1])  # valgrind's "==PID==" prefix
        totals = _dump_totals(out, pid)
    if not totals:
        raise SystemExit("no quote window was dumped")
    figures = _summary(totals, "instructions") | {"changes_per_msg": a.changes}
    if a.save is not None:
        a.save.write_text(json.dumps(totals))
    if a.against is not None:
        # The same messages quote in the same order on both trees: a window's difference is paired,
        # steadier than the difference of the two medians (a window's count moves with allocator state).
        other = json.loads(a.against.read_text())
        if len(other) != len(totals):
            raise SystemExit(f"{a.against}: {len(other)} windows, this run {len(totals)}: other options?")
        figures["median_diff_instructions"] = round(
            statistics.median(t - o for t, o in zip(totals, other, strict=True))
        )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
