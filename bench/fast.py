"""The optional compiled build: the simulator's hot modules compiled by mypyc in place, from the same sources.

``python bench/fast.py build|clean|status|compare [--repeat N]`` (``just build-fast``, ``just clean-fast``,
``just bench-fast``):

* ``build``: ``mypyc`` (from the ``fast`` extra, or ``dev``; a C compiler is needed) compiles ``MODULES``
  next to their sources: one ``.so`` per module and a shared ``*__mypyc*.so`` at the top of the tree,
  all git-ignored. Python imports an extension module before a ``.py`` of the same name, so from then
  on every run in this tree (``polymm sim``, the bench, the tests) uses them;
* ``clean``: removes them (and mypyc's ``build/`` directory): back to pure Python, the reference that
  CI tests and that every figure of the README refers to unless it says otherwise;
* ``status``: which of ``MODULES`` import compiled, and which of those builds are stale (the source
  changed since: Python still imports the old ``.so`` instead of it; exit status 1);
* ``compare``: ``just bench``'s engine workload (inline) and the W1M workload (``bench/w1m.py``), each
  run in fresh processes, pure and compiled taking turns (the pure runs import the ``.py`` files
  through an import hook, from the same tree), ``--repeat`` runs each: the events/s medians, their
  ratio and each side's digests (they must be the same: the compiled build changes no result), with
  the CPU model and the load average around the runs. Needs a build.

The modules were picked from ``python bench/hotspots.py engine``: the engine loop, the venue, the book,
the quoting core and the session; then the interpreted code they called most (``py-spy`` on the compiled
run shows only that): the log's row sink (``core.eventlog``), the unit conversions (``core.units``) and
the YES view (``core.yes_view``). None of them may define a msgspec Struct (mypyc would build it
without its class keywords and with its annotations flattened: ``core/structs.py``); their Structs
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

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
)

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
    """The compiled files of MODULES in the tree, and the shared mypyc library."""
    out = sorted(ROOT.glob("*__mypyc.*.so"))
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
    cmd = [sys.executable, "-m", "mypyc", *(str(source(m).relative_to(ROOT)) for m in MODULES)]
    print(" ".join(cmd))
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


def compare(repeat: int) -> dict[str, Any]:
    import w1m

    import bench  # bench/bench.py: machine()

    if len(compiled_modules()) != len(MODULES) or stale():
        raise SystemExit("compare needs a fresh build of every module: python bench/fast.py build")
    w1m_file = w1m.ensure_file(ROOT / "bench" / "out" / "w1m.npz")
    workloads = {
        "engine": ("bench/bench.py", "--child", "inline", "synthetic"),
        "w1m": ("bench/w1m.py", "inline", str(w1m_file)),
    }
    before = [round(x, 2) for x in os.getloadavg()]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {w: {"pure": [], "compiled": []} for w in workloads}
    for i in range(repeat):
        for name, args in workloads.items():
            for mode in ("pure", "compiled") if i % 2 == 0 else ("compiled", "pure"):
                r = _run(mode, *args)
                runs[name][mode].append(r)
                print(f"{name} {mode}: {r['events_per_s']} events/s", file=sys.stderr)
    out: dict[str, Any] = {"machine": bench.machine(), "modules": list(MODULES), "repeat": repeat}
    for name, by_mode in runs.items():
        med = {m: round(statistics.median(r["events_per_s"] for r in rs)) for m, rs in by_mode.items()}
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
    out["load_average_1m_5m_15m"] = {"before": before, "after": [round(x, 2) for x in os.getloadavg()]}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["build", "clean", "status", "compare"])
    p.add_argument("--repeat", type=int, default=5, help="runs per figure and build (median) [5]")
    p.add_argument("--out", help="also write the comparison to this JSON file")
    a = p.parse_args()
    if a.what == "build":
        return build()
    if a.what == "clean":
        return clean()
    if a.what == "status":
        return status()
    result = compare(a.repeat)
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")
    return 0 if all(result[w]["digests_equal"] for w in ("engine", "w1m")) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    sys.exit(main())
