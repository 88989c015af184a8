"""The optional compiled build: the simulator's hot modules compiled by mypyc in place, from the same sources.

``python bench/fast.py build|clean|status|compare [--repeat N]`` (``just build-fast``, ``just clean-fast``,
``just bench-fast``):

* ``build``: ``mypyc`` (from the ``fast`` extra, or ``dev``; a C compiler is needed) compiles ``MODULES``
  next to their sources: one ``.so`` per module and the library they share, ``core/fastlib__mypyc*.so``
  (``SHARED``), all git-ignored. Python imports an extension module before a ``.py`` of the same name,
  so from then on every run in this tree (``polymm`` commands, the bench, the tests) uses them. The
  shared library lives in a package, not at the top of the tree (where ``mypyc``'s command line puts
  it): the installed ``polymm`` command finds polymm's packages, not the tree's top-level files;
* ``clean``: removes them (and mypyc's ``build/`` directory): back to pure Python, the reference that
  CI tests and that every figure of the README refers to unless it says otherwise;
* ``status``: which of ``MODULES`` import compiled, and which of those builds are stale (the source
  changed since: Python still imports the old ``.so`` instead of it; exit status 1);
* ``compare``: issue #13's figures for both builds, each workload run in fresh processes, pure and
  compiled taking turns (the pure runs import the ``.py`` files through an import hook, from the same
  tree), ``--repeat`` runs each: ``just bench``'s engine workload inline with and without quoting (so
  the cost of an order action, ``bench.order_action_cost``) and with the actors engine, and the W1M
  workload (``bench/w1m.py``). ``figures`` has ``just bench``'s keys for each build
  (``inline_events_per_s``, ``actors_events_per_s``, ``order_action_us``, ``w1m_events_per_s``,
  ``w1m_peak_rss_mb``...; ``targets``: #13's), then per workload the events/s medians, their ratio,
  paired ratios and each side's digests (they must be the same: the compiled build changes no result;
  exit status 1 otherwise), with the CPU model and the load average around the runs. ``--only`` picks
  workloads; the JSON goes to ``bench/out/fast.json`` (git-ignored) unless ``--out`` says otherwise.
  Needs a build.

The modules were picked from ``python bench/hotspots.py engine``: the engine loop, the venue, the book, the
quoting core and the session; then the interpreted code they called most (``py-spy`` on the compiled run
shows only that): the log's row sink (``core.eventlog``), the unit conversions (``core.units``) and the YES
view (``core.yes_view``). Then the live feed's path, which ``compare``'s workloads do not run
(tick-to-quote, ``bench/tick_to_quote.py``: a market-channel frame decoded, checked against the client's
book replica, mapped onto the YES book and handed to the market actors): ``py-spy`` on it with the build
above put a quarter of a frame's time in the frame parser (``adapters.polymarket.parse``), 5% in the
client's book replica (``adapters.polymarket.book_feed``) and 10% in the fan-out to the actors
(``actors.dispatch``); compiled, they take a frame from 113k to 100k instructions (callgrind, 4,000 frames of
the tick-to-quote stream fed in process; pure Python: 121k). The rest of that path (the WebSocket client,
``actors.loop`` and ``actors.market``, subclassed by pykka-side and test code that a native class refuses,
and ``adapters.runlog``'s sink) stays interpreted. None of them may define a msgspec Struct (mypyc would
build it without its class keywords and with its annotations flattened: ``core/structs.py``); their Structs
live in each package's uncompiled ``structs`` module (``tests/test_fast_build.py`` checks both).
Compiled classes are native: no ``__dict__``, no attributes added or methods replaced at run time,
annotations checked at run time; the tests that patch such a class are marked ``pure_python`` and are
skipped on a compiled tree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

ROOT = Path(__file__).resolve().parent.parent
#: Where ``compare`` writes its figures unless ``--out`` says otherwise (git-ignored, like ``just bench``'s).
OUT_FILE: Final = ROOT / "bench" / "out" / "fast.json"

#: The modules the compiled build compiles (dotted names; sources under ROOT).
MODULES = (
    "sim.runner",
    "sim.eventcols",
    "venue.exchange",
    "venue.markouts",
    "core.book",
    "core.quoting",
    "core.reconcile",
    "core.estimators",
    "core.inventory",
    "actors.session",
    "core.eventlog",
    "core.units",
    "core.yes_view",
    "adapters.polymarket.parse",
    "adapters.polymarket.book_feed",
    "actors.dispatch",
)

#: The library the compiled modules share (mypyc's group): ``core/fastlib__mypyc.*.so``.
SHARED = "core.fastlib"

#: Run by ``compare`` with ``-c``: argv[1] ``pure`` makes MODULES import from their ``.py`` files.
_CHILD = f"""
import importlib.abc, importlib.util, runpy, sys
root, mode, script, *args = sys.argv[1:]
if mode == "pure":
    names = set({list(MODULES)!r})

    class PureFinder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname in names:
                return importlib.util.spec_from_file_location(
                    fullname, root + "/" + fullname.replace(".", "/") + ".py"
                )
            return None

    sys.meta_path.insert(0, PureFinder())
sys.argv = [script, *args]
runpy.run_path(script, run_name="__main__")
"""


def source(module: str) -> Path:
    return ROOT / (module.replace(".", "/") + ".py")


def built() -> list[Path]:
    """The compiled files of MODULES in the tree, and the shared library (also where older builds put it)."""
    out = sorted(ROOT.glob("*__mypyc.*.so")) + sorted(source(SHARED).parent.glob("*__mypyc.*.so"))
    for m in MODULES:
        src = source(m)
        out += sorted(src.parent.glob(src.stem + ".*.so"))
    return out


def stale() -> list[str]:
    """The modules of MODULES whose compiled file is older than their source: Python would still import it."""
    out = []
    for m in MODULES:
        src = source(m)
        so = list(src.parent.glob(src.stem + ".*.so"))
        if so and min(f.stat().st_mtime for f in so) < src.stat().st_mtime:
            out.append(m)
    return out


def build() -> int:
    clean()
    # What ``python -m mypyc FILES`` runs (a setup script calling ``mypycify``, built in place), with
    # the shared library named into the core package (``SHARED``) instead of the top of the tree.
    files = [str(source(m).relative_to(ROOT)) for m in MODULES]
    setup = ROOT / "build" / "setup.py"
    setup.parent.mkdir(exist_ok=True)
    setup.write_text(
        "from setuptools import setup\n"
        "from mypyc.build import mypycify\n\n"
        f"setup(name='polymm-fast', ext_modules=mypycify({files!r}, opt_level='3', group_name={SHARED!r}))\n"
    )
    cmd = [sys.executable, str(setup.relative_to(ROOT)), "build_ext", "--inplace"]
    print(" ".join(cmd), f"  ({', '.join(files)})")
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n")
        return done.returncode
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    return status()


def clean() -> int:
    for f in built():
        f.unlink()
        print(f"removed {f.relative_to(ROOT)}")
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    return 0


def compiled_modules() -> list[str]:
    """Which of MODULES import compiled, in a fresh process (this one may have imported them already)."""
    code = (
        "import importlib, json, sys\n"
        f"print(json.dumps([m for m in {list(MODULES)!r} "
        "if not (importlib.import_module(m).__file__ or '').endswith('.py')]))"
    )
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", code]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    return list(json.loads(done.stdout)) if done.returncode == 0 else []


def status() -> int:
    compiled, old = compiled_modules(), stale()
    for m in MODULES:
        note = "  STALE: its source changed since" if m in old else ""
        print(f"{'compiled' if m in compiled else 'pure    '}  {m}{note}")
    if old:
        print("a stale build runs the old code: just build-fast again, or just clean-fast")
    return 1 if old else 0


def _run(mode: str, script: str, *args: str) -> dict[str, Any]:
    cmd = [sys.executable, "-c", _CHILD, str(ROOT), mode, str(ROOT / script), *args]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


#: What ``compare`` runs, each in fresh processes: ``just bench``'s children for the engine figures.
WORKLOADS: Final[tuple[str, ...]] = ("engine", "noquote", "actors", "w1m")
#: Issue #13's targets for the figures ``compare`` reports (``just bench``'s keys).
TARGETS: Final = {
    "inline_events_per_s": ">= 1000000",
    "actors_events_per_s": ">= 300000",
    "order_action_us": "<= 4",
    "w1m_events_per_s": ">= 1300000",
    "w1m_peak_rss_mb": "<= 200",
}


def compare(repeat: int, only: tuple[str, ...] = WORKLOADS) -> dict[str, Any]:
    import w1m

    import bench  # bench/bench.py: machine(), the medians and the cost of an order action

    if len(compiled_modules()) != len(MODULES) or stale():
        raise SystemExit("compare needs a fresh build of every module: python bench/fast.py build")
    w1m_file = w1m.ensure_file(ROOT / "bench" / "out" / "w1m.npz")
    children = {
        "engine": ("bench/bench.py", "--child", "inline", "synthetic"),
        "noquote": ("bench/bench.py", "--child", "inline", "synthetic-noquote"),
        "actors": ("bench/bench.py", "--child", "actors", "synthetic"),
        "w1m": ("bench/w1m.py", "inline", str(w1m_file)),
    }
    workloads = {w: children[w] for w in WORKLOADS if w in only}
    before = [round(x, 2) for x in os.getloadavg()]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {w: {"pure": [], "compiled": []} for w in workloads}
    for i in range(repeat):
        for name, args in workloads.items():
            for mode in ("pure", "compiled") if i % 2 == 0 else ("compiled", "pure"):
                r = _run(mode, *args)
                runs[name][mode].append(r)
                print(f"{name} {mode}: {r['events_per_s']} events/s", file=sys.stderr)
    out: dict[str, Any] = {
        "machine": bench.machine(),
        "when": time.strftime("%Y-%m-%d"),
        "modules": list(MODULES),
        "repeat": repeat,
        "load_average_1m_5m_15m": {"before": before, "after": [round(x, 2) for x in os.getloadavg()]},
    }
    medians = {w: {m: bench._median_of_runs(rs) for m, rs in by_mode.items()} for w, by_mode in runs.items()}
    out["figures"] = {m: _figures({w: med[m] for w, med in medians.items()}) for m in ("pure", "compiled")}
    out["targets"] = {k: v for k, v in TARGETS.items() if k in out["figures"]["pure"]}
    for name, by_mode in runs.items():
        med = {m: medians[name][m]["events_per_s"] for m in by_mode}
        digests = {m: sorted({r["digest"] for r in rs}) for m, rs in by_mode.items()}
        out[name] = {
            "events_per_s": med,
            "events_per_s_runs": {m: [r["events_per_s"] for r in rs] for m, rs in by_mode.items()},
            "ratio": round(med["compiled"] / med["pure"], 2),
            # each run against the one of the other build next to it (the load drifts over a comparison)
            "paired_ratios": [
                round(c["events_per_s"] / p["events_per_s"], 2)
                for p, c in zip(by_mode["pure"], by_mode["compiled"], strict=True)
            ],
            "digests_equal": len(digests["pure"]) == 1 and digests["pure"] == digests["compiled"],
            "digest": digests["pure"][0] if len(digests["pure"]) == 1 else digests,
            "peak_rss_mb": {m: max(r["peak_rss_mb"] for r in rs) for m, rs in by_mode.items()},
        }
        if "cpu_s" in by_mode["pure"][0]:  # the engine workload's children report the run's CPU time
            cpu = {m: statistics.median(r["cpu_s"] for r in rs) for m, rs in by_mode.items()}
            out[name]["cpu_s"] = cpu
            out[name]["cpu_ratio"] = round(cpu["pure"] / cpu["compiled"], 2)
    if "engine" in runs and "actors" in runs:  # the two engines decide and log the same
        out["actors"]["same_digest_as_inline"] = out["actors"]["digest"] == out["engine"]["digest"]
    return out


def _figures(med: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``just bench``'s keys for the issue #13 figures, from one build's median runs of each workload."""
    import bench  # bench/bench.py, as in compare

    out: dict[str, Any] = {}
    if "engine" in med:
        out["inline_events_per_s"] = med["engine"]["events_per_s"]
        out["peak_rss_mb"] = med["engine"]["peak_rss_mb"]
    if "actors" in med:
        out["actors_events_per_s"] = med["actors"]["events_per_s"]
        out["peak_rss_mb"] = max(out.get("peak_rss_mb", 0), med["actors"]["peak_rss_mb"])
    if "noquote" in med:
        out["inline_events_per_s_without_quoting"] = med["noquote"]["events_per_s"]
    if "engine" in med and "noquote" in med:
        actions = bench.order_action_cost(med["engine"], med["noquote"])
        out["order_action_us"] = actions["us_per_action"]
        out["cpu_us_per_action"] = actions["cpu_us_per_action"]
    if "w1m" in med:
        out["w1m_events_per_s"] = med["w1m"]["events_per_s"]
        out["w1m_peak_rss_mb"] = med["w1m"]["peak_rss_mb"]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["build", "clean", "status", "compare"])
    p.add_argument("--repeat", type=int, default=5, help="runs per figure and build (median) [5]")
    p.add_argument(
        "--only",
        help=f"compare these workloads only, comma-separated, of {','.join(WORKLOADS)} [all]",
    )
    p.add_argument(
        "--out",
        default=str(OUT_FILE),
        help="where compare writes its JSON [bench/out/fast.json, git-ignored]",
    )
    a = p.parse_args()
    if a.what == "build":
        return build()
    if a.what == "clean":
        return clean()
    if a.what == "status":
        return status()
    only = tuple(a.only.split(",")) if a.only else WORKLOADS
    if unknown := set(only) - set(WORKLOADS):
        p.error(f"--only: unknown workloads {sorted(unknown)}")
    result = compare(a.repeat, only)
    text = json.dumps(result, indent=2)
    print(text)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    same = [result[w]["digests_equal"] for w in WORKLOADS if w in result]
    same += [result["actors"].get("same_digest_as_inline", True)] if "actors" in result else []
    return 0 if all(same) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    sys.exit(main())
