"""Every bench script explains itself: ``--help`` prints its usage and exits 0, never a traceback.

The scripts are run as people run them (``python bench/X.py --help``), in fresh processes.
``peer_hftbacktest.py`` needs the ``[peers]`` extra to run, but not to answer ``--help``; without it a
run says what is missing (exit status 1, one line), again without a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py"))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, *args]
    return subprocess.run(cmd, check=False, cwd=BENCH.parent, capture_output=True, text=True, timeout=120)


def test_every_script_is_covered() -> None:
    assert {"bench.py", "tick_to_quote.py", "w1m.py", "eventlog.py", "peer_hftbacktest.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script: str) -> None:
    done = _run(str(BENCH / script), "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: "), done.stdout
    assert "Traceback" not in done.stderr


def test_a_wrong_argument_is_a_usage_error() -> None:
    done = _run(str(BENCH / "w1m.py"), "bogus", "x.npz")
    assert done.returncode == 2
    assert "invalid choice: 'bogus'" in done.stderr and "Traceback" not in done.stderr


def test_peer_without_hftbacktest_says_what_is_missing() -> None:
    try:
        import hftbacktest  # noqa: F401, PLC0415
    except ImportError:
        pass
    else:
        pytest.skip("hftbacktest is installed here: the script would run")
    done = _run(str(BENCH / "peer_hftbacktest.py"), "missing.npz")
    assert done.returncode == 1
    assert "[peers] extra" in done.stderr and "Traceback" not in done.stderr


def test_just_bench_times_polymm_help(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = _run(str(BENCH / "bench.py"), "--only", "help", "--out", str(out))
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    runs = figures["details"]["cli_help"]["runs_s"]
    assert len(runs) == 5 and all(t > 0 for t in runs)
    assert figures["cli_help_s"] == sorted(runs)[2]
    assert figures["details"]["cli_help"]["command"].endswith("--help")


_PEAK = f"import sys; sys.path.insert(0, {str(BENCH)!r}); from w1m import peak_rss_mb"


def test_a_run_reports_its_own_peak_rss_not_its_parents() -> None:
    # Linux keeps ru_maxrss across fork and exec: a child of a 200 MB parent reported >= 200 MB.
    parent = (
        "import subprocess, sys\n"
        "held = bytearray(200 * 2**20)\n"
        "for i in range(0, len(held), 4096): held[i] = 1\n"
        f"child = {_PEAK + '; print(peak_rss_mb())'!r}\n"
        "out = subprocess.run([sys.executable, '-c', child], capture_output=True, text=True, check=True)\n"
        "print(out.stdout)\n"
        f"{_PEAK}; print(peak_rss_mb())\n"
    )
    child_mb, parent_mb = (float(x) for x in _run("-c", parent).stdout.split())
    assert parent_mb >= 200
    assert child_mb < 100


def test_quote_window_hot_counts_windows() -> None:
    # The callgrind run takes minutes; --hot drives the same path and windows without valgrind.
    done = _run(
        str(BENCH / "quote_window.py"), "--hot", "--messages", "60", "--warmup", "20", "--markets", "5"
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["windows"] > 0 and figures["median_ns"] > 0
