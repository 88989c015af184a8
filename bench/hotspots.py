"""Where the simulator's time goes: one engine run under a profiler, the top functions printed.

``python bench/hotspots.py w1m|engine|noquote [--cprofile] [--top N]``

* ``w1m``: the W1M workload (``bench/w1m.py``, generated into ``bench/out/`` if missing), the inline
  engine as ``just bench`` runs it (volatility pull off, zero latency, inputs not logged);
* ``engine``: the bench engine workload (10 synthetic markets, 1,000,000 events, quoting, the default
  50 ms latencies); ``noquote``: the same with quoting off (the loop and the venue alone).

By default the run is sampled by ``py-spy`` (when it is installed; it is not a dependency) in a child
process, and each function's share of the engine loop's samples is printed, by itself (self) and with
what it calls (inclusive): sampling costs the run little, so the shares are those of a normal run.
``--cprofile`` (and the fallback without py-spy) uses the standard library's cProfile: exact call
counts, but its per-call overhead (~3x the run time) inflates small functions. The run's own figures
(events/s, order actions, digest) are printed first.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for p in (str(ROOT), str(ROOT / "bench")):
    if p not in sys.path:
        sys.path.insert(0, p)


def build(workload: str) -> Any:
    """The runner of ``workload``, ready to run."""
    import msgspec

    from app.configfile import load_config
    from core.quoting import quote_params
    from sim.runner import Runner, RunSettings
    from sim.structs import Latency

    cfg = load_config(ROOT / "configs" / "market_maker.yaml")
    if workload == "w1m":
        import w1m  # bench/ is on sys.path

        from sim.sources.hbt_npz import HbtNpzSource, load

        path = w1m.ensure_file(ROOT / "bench" / "out" / "w1m.npz")
        vol = msgspec.structs.replace(
            cfg.quoting.volatility, pull_threshold_px=1_000_000, resume_threshold_px=999_999
        )
        cfg = msgspec.structs.replace(cfg, quoting=msgspec.structs.replace(cfg.quoting, volatility=vol))
        tapes = load(HbtNpzSource(path=str(path), tick_px=100, market="w1m"))
        zero = Latency(feed_ms=0, order_ms=0, response_ms=0)
        return Runner(tapes, quote_params(cfg), RunSettings(latency=zero), seed=w1m.SEED)
    import bench  # bench/bench.py

    tapes = bench._synthetic(**bench.ENGINE_WORKLOAD)
    settings = RunSettings(global_ev_cap_usdc6=10**9)
    runner = Runner(tapes, quote_params(cfg), settings, seed=11)
    if workload == "noquote":
        for lane in runner.lanes:
            lane.session.quoting_enabled = False
    return runner


def aggregate(raw: Path, top: int) -> None:
    """Print py-spy's collapsed stacks as self and inclusive shares of the engine loop, per function."""
    self_counts: collections.Counter[str] = collections.Counter()
    incl_counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        first = next((k for k, f in enumerate(frames) if f.startswith("Runner._loop ")), None)
        if first is None:
            continue  # loading, set-up, the interpreter's start
        frames = frames[first:]
        n = int(count)
        total += n
        self_counts[frames[-1]] += n
        for name in set(frames):
            incl_counts[name] += n
    print(f"{total} samples in the engine loop; share by itself (self) and with what it calls (inclusive)")
    print(f"{'self':>6} {'incl':>6}  function")
    for name, n in self_counts.most_common(top):
        print(f"{100 * n / total:5.1f}% {100 * incl_counts[name] / total:5.1f}%  {name}")


def run(workload: str, cprofile: bool, top: int) -> None:
    """One run of ``workload`` in this process (under cProfile with ``cprofile``); its figures."""
    runner = build(workload)
    prof = None
    t0 = time.perf_counter()
    if cprofile:
        import cProfile

        prof = cProfile.Profile()
        prof.runcall(runner.run, "inline")
        digest = prof.runcall(runner.log.digest)
    else:
        runner.run("inline")
        digest = runner.log.digest()
    wall = time.perf_counter() - t0
    stats = [lane.session.stats for lane in runner.lanes]
    print(
        f"{workload}: {runner.events_total:,} events in {wall:.2f} s ({runner.events_total / wall:,.0f} "
        f"events/s), {sum(s.places + s.cancels for s in stats):,} order actions, "
        f"{sum(s.decide_calls for s in stats):,} decide calls, "
        f"{sum(len(lane.exchange.fills) for lane in runner.lanes):,} fills, digest {digest[:16]}",
        flush=True,
    )
    if prof is not None:
        import pstats

        pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def main() -> int:
    """Profile one workload and print where its time goes."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workload", choices=("w1m", "engine", "noquote"))
    p.add_argument("--cprofile", action="store_true", help="cProfile instead of py-spy")
    p.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)  # the child py-spy samples
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second [250]")
    p.add_argument("--top", type=int, default=25, help="functions to print [25]")
    a = p.parse_args()
    if a.cprofile or a.plain:
        run(a.workload, a.cprofile, a.top)
        return 0
    spy = shutil.which("py-spy")
    if spy is None:
        print("py-spy is not installed: profiling with cProfile (--cprofile)", file=sys.stderr)
        run(a.workload, True, a.top)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "stacks.txt"
        cmd = [spy, "record", "--format", "raw", "-r", str(a.rate), "-o", str(raw), "--"]
        cmd += [sys.executable, __file__, a.workload, "--plain"]
        subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
        aggregate(raw, a.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
