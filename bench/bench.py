"""polymm benchmarks: ``just bench`` writes bench/out/results.json and prints it.

Every figure is a median over repeated runs (the machines are shared and noisy); each engine run
happens in a fresh subprocess so its peak RSS is its own. Workloads are fixed and seeded:

* ``engine``: the synthetic source, 10 markets, 1,000,000 book events (200 events/s per market,
  500 s), the market-maker config quoting throughout; the same workload for both engines; and the
  inline engine on it with quoting off, taking turns with the quoting runs: what quoting adds,
  divided by the order actions (places and cancels) it sent, is the cost of an order action
  (``order_action_us``: decisions and fills included, so an upper bound on the round trip);
* ``hbt``: one market, 1,000,000 events written to and read back from hftbacktest's ``.npz`` format;
* ``decide``: ``decide()`` timed call by call on inputs captured from a simulation run;
* ``tick_to_quote``: 50 markets at 5,000 messages/s over a loopback WebSocket, from decoding a
  message to the orders it causes handed to the gateway (``bench/tick_to_quote.py``);
* ``sign``: one order built and signed per call, coincurve installed, in fresh processes taking turns:
  polymm's path (our EIP-712 digest, coincurve ``sign_recoverable``, the SDK's ``SignedOrder``, the
  amount check; V1, neg-risk V1 and V2 in turn) against polymarket-client's own
  ``SecureClient.create_limit_order`` (its metadata cache warmed once against a loopback emulator, so
  no request is timed). The load average is recorded with the figures: the machines are shared.
* ``w1m``: issue #13's W1M workload (``bench/w1m.py``: 1,000,000 rows in hftbacktest's event format,
  generated once, seed 7, and cached in ``bench/out/``): the ``.npz`` load alone (time, peak RSS),
  then polymm's inline engine on it (events/s, order actions, fills, peak RSS), and hftbacktest on
  the same file when an interpreter with it is at hand (``--peer-python``, ``bench/peer_hftbacktest.py``),
  with the ratio. Each figure is the median of ``--repeat`` fresh processes and carries the CPU
  model and the load average around it.
* ``cli_help``: ``polymm --help`` in five fresh processes, the median wall time (``bench_help``).

Results go to ``bench/out/results.json`` (git-ignored) unless ``--out`` says otherwise; the committed
``bench/results.json`` holds the reference figures the README quotes, refreshed on purpose with
``--out bench/results.json``.

Usage: ``python bench/bench.py [--repeat N] [--out FILE] [--only WHICH] [--peer-python PYTHON]``;
``--only sign`` runs the signing figures alone, ``--only w1m`` the W1M ones, ``--only actions`` the
engine workload with and without quoting (the cost of an order action), ``--only help`` the
``polymm --help`` time, and updates them in the file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "bench"))  # (also when bench/fast.py runs this file through runpy)

from w1m import peak_rss_mb  # noqa: E402 (bench/ is not a package)

CONFIG = ROOT / "configs" / "market_maker.yaml"
OUT_DIR = ROOT / "bench" / "out"
ENGINE_WORKLOAD = {"markets": 10, "events": 1_000_000, "events_per_s": 200}
HBT_EVENTS = 1_000_000


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        cpu = next(
            (ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), cpu
        )
    except (OSError, subprocess.CalledProcessError):
        pass
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": mem_gb,
    }


def _synthetic(markets: int, events: int, events_per_s: int, seed: int = 11):
    from sim.sources.synthetic import SyntheticSource, generate

    spec = SyntheticSource(
        markets=markets,
        duration_s=events / markets / events_per_s,
        events_per_s=events_per_s,
        fee_rate=0.04,
        resolve=True,
    )
    return generate(spec, seed)


def run_engine(engine: str, source: str) -> dict[str, Any]:
    """One timed run (called in a subprocess). The log is hashed, not stored."""
    from app.configfile import load_config
    from core.quoting import quote_params
    from sim.runner import Runner, RunSettings

    t0 = time.perf_counter()
    if source == "hbt":
        from sim.sources.hbt_npz import HbtNpzSource, load, write_npz

        tape = _synthetic(1, HBT_EVENTS, 2_000)[0]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.npz"
            write_npz(path, tape, tape.info.tick_px / 10_000)
            t_load = time.perf_counter()
            tapes = load(
                HbtNpzSource(
                    path=str(path),
                    tick_px=tape.info.tick_px,
                    min_qty=tape.info.min_qty,
                    market=tape.info.market,
                ),
                path.parent,
            )
            load_s = time.perf_counter() - t_load
    else:
        tapes = _synthetic(**ENGINE_WORKLOAD)
        load_s = 0.0
    gen_s = time.perf_counter() - t0
    cfg = load_config(CONFIG)
    runner = Runner(tapes, quote_params(cfg), RunSettings(global_ev_cap_usdc6=10**9), seed=11)
    if source == "synthetic-noquote":  # the same loop and venue, the sessions quoting nothing
        for lane in runner.lanes:
            lane.session.quoting_enabled = False
    t0, c0 = time.perf_counter(), time.process_time()
    runner.run(engine)  # type: ignore[arg-type]
    digest = runner.log.digest()  # (the log's columns and their hash: part of the run's cost)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    fills = sum(len(lane.exchange.fills) for lane in runner.lanes)
    decisions = sum(lane.session.stats.decide_calls for lane in runner.lanes)
    return {
        "events": runner.events_total,
        "wall_s": round(wall, 3),
        # CPU time of this process: on a shared machine it moves less with the others' load than wall.
        "cpu_s": round(cpu, 3),
        "events_per_s": round(runner.events_total / wall),
        "generate_s": round(gen_s, 2),
        "npz_load_s": round(load_s, 2),
        "decide_calls": decisions,
        "fills": fills,
        "orders": sum(lane.session.stats.places for lane in runner.lanes),
        "order_actions": sum(lane.session.stats.places + lane.session.stats.cancels for lane in runner.lanes),
        "digest": digest,
        "peak_rss_mb": peak_rss_mb(),
    }


def order_action_cost(quoting: dict[str, Any], quiet: dict[str, Any]) -> dict[str, Any]:
    """What quoting adds to the engine workload's run, per order action (place or cancel).

    The two runs replay the same events through the same loop and venue; the difference is
    everything quoting does (decisions, order round trips: command, venue, reports, their handling
    and log records, fills), so this bounds the cost of one simulated order round trip from above.
    """
    n = quoting["order_actions"]
    return {
        "order_actions": n,
        "decide_calls": quoting["decide_calls"],
        "fills": quoting["fills"],
        "quoting_wall_s": quoting["wall_s"],
        "without_quoting_wall_s": quiet["wall_s"],
        "us_per_action": round((quoting["wall_s"] - quiet["wall_s"]) / n * 1e6, 2),
        "quoting_cpu_s": quoting["cpu_s"],
        "without_quoting_cpu_s": quiet["cpu_s"],
        "cpu_us_per_action": round((quoting["cpu_s"] - quiet["cpu_s"]) / n * 1e6, 2),
    }


def bench_decide(n_inputs: int = 2_000, rounds: int = 20) -> dict[str, Any]:
    """Time decide() call by call on inputs captured from a short simulation."""
    import actors.session as session_mod
    from app.configfile import load_config
    from core.quoting import decide, quote_params
    from sim.runner import Runner, RunSettings

    captured: list[tuple[Any, ...]] = []
    real = session_mod.decide

    def capture(*args: Any, **kwargs: Any) -> Any:
        if len(captured) < n_inputs:
            captured.append((args, kwargs))
        return real(*args, **kwargs)

    session_mod.decide = capture  # type: ignore[assignment]
    try:
        tapes = _synthetic(4, 80_000, 20)
        Runner(tapes, quote_params(load_config(CONFIG)), RunSettings(), 3).run("inline")
    finally:
        session_mod.decide = real
    times: list[int] = []
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for args, kwargs in captured:
            t0 = clock()
            decide(*args, **kwargs)
            times.append(clock() - t0)
    times.sort()
    return {
        "inputs": len(captured),
        "calls": len(times),
        "median_us": round(times[len(times) // 2] / 1000, 3),
        "p99_us": round(times[int(len(times) * 0.99)] / 1000, 3),
    }


SIGN_ORDERS = 3_000


def bench_sdk_create_limit_order(n: int) -> dict[str, Any]:
    """polymarket-client's ``create_limit_order`` per order, public API only (called in a subprocess).

    A loopback emulator without flow serves the two metadata reads the SDK makes per market (cached
    for 10 minutes); one warm-up order per market fills the cache, so the timed calls make no request.
    """
    from eth_account import Account
    from polymarket import SecureClient

    from adapters.polymarket.sdk import environment_for
    from emulator import Emulator
    from emulator.scenario import FlowConfig, MarketConfig, Scenario

    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    off = FlowConfig(enabled=False)
    scenario = Scenario(
        name="sign-bench",
        markets=(
            MarketConfig(slug="plain", question="Plain?", flow=off),
            MarketConfig(slug="negrisk", question="Neg risk?", tick_px=10, neg_risk=True, flow=off),
        ),
    )
    key = Account.create().key.hex()
    with Emulator(scenario, port=0) as emu:
        client = SecureClient.create(
            private_key=key, wallet=Account.from_key(key).address, environment=environment_for(emu.clob_url)
        )
        tokens = [m["yes_token"] for m in emu.venue.market_ids()]
        for token in tokens:
            client.create_limit_order(token_id=token, price="0.45", size="5", side="BUY", post_only=True)
        us: list[float] = []
        for i in range(n):
            size = f"{5 + i * 0.01:.2f}"
            price = f"{(100 + (i * 100) % 9_800) / 10_000:.2f}"
            t0 = time.perf_counter()
            client.create_limit_order(
                token_id=tokens[i % 2],
                price=price,
                size=size,
                side="BUY" if i % 2 else "SELL",
                post_only=True,
            )
            us.append((time.perf_counter() - t0) * 1e6)
        client.close()
    us.sort()
    return {
        "n": n,
        "median_us": round(statistics.median(us), 1),
        "p90_us": round(us[int(0.9 * (n - 1))], 1),
        "min_us": round(us[0], 1),
        "path": "polymarket-client SecureClient.create_limit_order (V1 and neg-risk V1; metadata cached)",
    }


def bench_sign(repeat: int) -> dict[str, Any]:
    """Both signing paths in fresh processes, taking turns; medians of the runs' medians."""
    load_before = os.getloadavg()
    rounds = []
    for _ in range(repeat):
        rounds.append({"ours": _sub(["--sign", "ours"]), "sdk": _sub(["--sign", "sdk"])})
    load_after = os.getloadavg()

    def summary(kind: str) -> dict[str, Any]:
        runs = [r[kind] for r in rounds]
        return {
            "median_us": statistics.median(r["median_us"] for r in runs),
            "min_us": min(r["min_us"] for r in runs),
            "path": runs[0]["path"],
            "runs": runs,
        }

    ours, sdk = summary("ours"), summary("sdk")
    return {
        "orders_per_run": SIGN_ORDERS,
        "ours": ours,
        "sdk_create_limit_order": sdk,
        "sdk_over_ours": round(sdk["median_us"] / ours["median_us"], 2),
        "load_average_1m": [round(load_before[0], 2), round(load_after[0], 2)],
        "machine": machine(),
        "when": time.strftime("%Y-%m-%d"),
    }


def _sign_keys(sign: dict[str, Any]) -> dict[str, Any]:
    return {
        "sign_order_us_median": sign["ours"]["median_us"],
        "sdk_create_limit_order_us_median": sign["sdk_create_limit_order"]["median_us"],
    }


def _sub(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _median_pair(args_a: list[str], args_b: list[str], repeat: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """``_median_runs`` of two children, their runs taking turns."""
    runs_a: list[dict[str, Any]] = []
    runs_b: list[dict[str, Any]] = []
    for _ in range(repeat):
        runs_a.append(_sub(args_a))
        runs_b.append(_sub(args_b))
    return _median_of_runs(runs_a), _median_of_runs(runs_b)


def _median_runs(args: list[str], repeat: int) -> dict[str, Any]:
    return _median_of_runs([_sub(args) for _ in range(repeat)])


def _median_of_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    digests = {r["digest"] for r in runs}
    assert len(digests) == 1, f"non-deterministic runs: {digests}"
    best = sorted(runs, key=lambda r: r["events_per_s"])[len(runs) // 2]
    best = dict(best)
    best["events_per_s_runs"] = [r["events_per_s"] for r in runs]
    best["events_per_s"] = round(statistics.median(r["events_per_s"] for r in runs))
    best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    return best


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _median_of(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda r: r[key])
    out = dict(ordered[len(ordered) // 2])
    out[f"{key}_runs"] = [r[key] for r in runs]
    out[key] = statistics.median(r[key] for r in runs)
    return out


def bench_help(runs: int = 5) -> dict[str, Any]:
    """``polymm --help`` as a user runs it: fresh processes, the median wall time in seconds.

    The command is the installed ``polymm`` script beside this interpreter (a version manager's shim
    in front of it, such as pyenv's, adds ~0.2 s of its own), else ``python -m app.cli``. One untimed
    run first writes the byte-code caches a fresh checkout lacks.
    """
    script = Path(sys.executable).with_name("polymm")
    cmd = [str(script), "--help"] if script.exists() else [sys.executable, "-m", "app.cli", "--help"]
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    load = _load_average()
    times_s = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        times_s.append(time.perf_counter() - t0)
    return {
        "median_s": round(statistics.median(times_s), 3),
        "runs_s": [round(t, 3) for t in times_s],
        "command": " ".join([Path(cmd[0]).name, *cmd[1:]]),
        "cpu": machine()["cpu"],
        "load_average_1m_5m_15m": {"before": load, "after": _load_average()},
    }


def _timed(args: list[str], repeat: int, key: str, python: str = sys.executable) -> dict[str, Any]:
    """``repeat`` fresh processes of ``args`` taking turns; the median by ``key``, with the load around it."""
    before = _load_average()
    runs = []
    for _ in range(repeat):
        out = subprocess.run([python, *args], capture_output=True, text=True, check=True, cwd=ROOT)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return _median_of(runs, key) | {"load_average_1m_5m_15m": {"before": before, "after": _load_average()}}


def _peer_python(requested: str | None) -> tuple[str | None, str]:
    """An interpreter that imports hftbacktest, or None and why not."""
    python = requested or os.environ.get("POLYMM_PEER_PYTHON") or sys.executable
    probe = subprocess.run(
        [python, "-c", "import hftbacktest, numba"], capture_output=True, text=True, cwd="/", check=False
    )
    if probe.returncode == 0:
        return python, ""
    return None, (
        f"hftbacktest is not installed for {python}: not measured (pip install -e '.[peers]' in an "
        "environment of its own, it pins NumPy < 2.3; then --peer-python ENV/bin/python)"
    )


def bench_w1m(repeat: int, peer_python: str | None) -> dict[str, Any]:
    """The W1M figures (see the module docstring)."""
    w1m = str(ROOT / "bench" / "w1m.py")
    path = OUT_DIR / "w1m.npz"
    subprocess.run([sys.executable, w1m, "generate", str(path)], check=True, cwd=ROOT, capture_output=True)
    load = _timed([w1m, "load", str(path)], repeat, "load_s")
    polymm = _timed([w1m, "inline", str(path)], repeat, "events_per_s")
    python, why = _peer_python(peer_python)
    peer: dict[str, Any] = {"note": why}
    if python is not None:
        peer = _timed(
            [str(ROOT / "bench" / "peer_hftbacktest.py"), str(path)], repeat, "events_per_s", python
        )
    out = {
        "file": str(path.relative_to(ROOT)),
        "cpu": machine()["cpu"],
        "load": load,
        "polymm_inline": polymm,
        "hftbacktest": peer,
    }
    if python is not None:
        out["polymm_over_hftbacktest"] = round(polymm["events_per_s"] / peer["events_per_s"], 3)
    return out


def _w1m_keys(w: dict[str, Any]) -> dict[str, Any]:
    peer = w["hftbacktest"]
    return {
        "w1m_load_s": w["load"]["load_s"],
        "w1m_load_peak_rss_mb": w["load"]["peak_rss_mb"],
        "w1m_events_per_s": w["polymm_inline"]["events_per_s"],
        "w1m_order_actions": w["polymm_inline"]["order_actions"],
        "w1m_fills": w["polymm_inline"]["fills"],
        "w1m_peak_rss_mb": w["polymm_inline"]["peak_rss_mb"],
        "w1m_hftbacktest_events_per_s": peer.get("events_per_s", peer.get("note")),
        "w1m_polymm_over_hftbacktest": w.get("polymm_over_hftbacktest"),
    }


def main() -> int:
    """Run every benchmark and write the results JSON."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--out", default=str(OUT_DIR / "results.json"), help="[bench/out/results.json, git-ignored]"
    )
    p.add_argument("--repeat", type=int, default=3, help="runs per engine figure (median) [3]")
    p.add_argument(
        "--only",
        choices=("sign", "w1m", "actions", "help"),
        help="run only these figures and update them in --out",
    )
    p.add_argument("--peer-python", help="an interpreter with hftbacktest for the W1M peer figure")
    p.add_argument("--child", nargs=2, metavar=("ENGINE", "SOURCE"), help=argparse.SUPPRESS)
    p.add_argument(
        "--tick-to-quote", nargs=3, metavar=("CHANGES", "ACTORS", "SIGNING"), help=argparse.SUPPRESS
    )
    p.add_argument("--sign", choices=("ours", "sdk"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.sign:
        from adapters.polymarket.orders import bench_sign_orders

        print(
            json.dumps(
                bench_sign_orders(SIGN_ORDERS)
                if a.sign == "ours"
                else bench_sdk_create_limit_order(SIGN_ORDERS)
            )
        )
        return 0
    if a.only == "sign":
        sign = bench_sign(a.repeat)
        path = Path(a.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        results = json.loads(path.read_text()) if path.exists() else {}
        results |= _sign_keys(sign)
        results.setdefault("details", {})["sign"] = sign
        path.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(sign, indent=2))
        return 0
    if a.tick_to_quote:
        from tick_to_quote import run as ttq_run  # bench/ is on sys.path when run as a script

        changes, actors, signing = a.tick_to_quote
        print(json.dumps(ttq_run(changes_per_msg=int(changes), actors=actors, signing=signing == "1")))
        return 0
    if a.child:
        engine, source = a.child
        print(json.dumps(run_engine(engine, source)))
        return 0
    out_path = Path(a.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if a.only == "actions":
        load = _load_average()
        inline, quiet = _median_pair(
            ["--child", "inline", "synthetic"], ["--child", "inline", "synthetic-noquote"], a.repeat
        )
        actions = order_action_cost(inline, quiet) | {
            "cpu": machine()["cpu"],
            "load_average_1m_5m_15m": {"before": load, "after": _load_average()},
            "inline_events_per_s_runs": inline["events_per_s_runs"],
            "without_quoting_events_per_s_runs": quiet["events_per_s_runs"],
        }
        results = json.loads(out_path.read_text()) if out_path.exists() else {}
        results |= {
            "inline_events_per_s": inline["events_per_s"],
            "inline_events_per_s_without_quoting": quiet["events_per_s"],
            "order_action_us": actions["us_per_action"],
        }
        results.setdefault("details", {})["order_actions"] = actions
        out_path.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(actions, indent=2))
        return 0
    if a.only == "help":
        cli = bench_help()
        results = json.loads(out_path.read_text()) if out_path.exists() else {}
        results |= {"cli_help_s": cli["median_s"]}
        results.setdefault("details", {})["cli_help"] = cli
        out_path.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(cli, indent=2))
        return 0
    if a.only == "w1m":
        w = bench_w1m(a.repeat, a.peer_python)
        results = json.loads(out_path.read_text()) if out_path.exists() else {}
        results |= _w1m_keys(w)
        results.setdefault("details", {})["w1m"] = w
        out_path.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(w, indent=2))
        return 0
    results: dict[str, Any] = {"machine": machine(), "when": time.strftime("%Y-%m-%d")}
    # Quoting and not quoting take turns, so the machine's load weighs on both alike.
    inline, quiet = _median_pair(
        ["--child", "inline", "synthetic"], ["--child", "inline", "synthetic-noquote"], a.repeat
    )
    actions = order_action_cost(inline, quiet)
    actors = _median_runs(["--child", "actors", "synthetic"], a.repeat)
    assert inline["digest"] == actors["digest"], "engines disagree"
    hbt = _median_runs(["--child", "inline", "hbt"], a.repeat)
    dec = bench_decide()
    # Latency tails are the noisiest figure on a shared machine: three fresh processes, medians.
    ttq_runs = [_sub(["--tick-to-quote", "1", "loop", "0"]) for _ in range(a.repeat)]
    ttq = {
        "median_us": statistics.median(r["median_us"] for r in ttq_runs),
        "p99_us": statistics.median(r["p99_us"] for r in ttq_runs),
        "runs": ttq_runs,
        # One run each, for comparison: a gateway thread signing every order meanwhile (as live
        # trading does), a thread per market actor, and the heavier message shape.
        "with_signing_gateway": _sub(["--tick-to-quote", "1", "loop", "1"]),
        "thread_per_actor": _sub(["--tick-to-quote", "1", "threads", "0"]),
        "four_changes_per_message": _sub(["--tick-to-quote", "4", "loop", "0"]),
    }
    sign = bench_sign(a.repeat)
    w1m = bench_w1m(a.repeat, a.peer_python)
    cli = bench_help()
    results |= {
        "inline_events_per_s": inline["events_per_s"],
        "actors_events_per_s": actors["events_per_s"],
        "hbt_npz_events_per_s": hbt["events_per_s"],
        "decide_us_median": dec["median_us"],
        "decide_us_p99": dec["p99_us"],
        "peak_rss_mb": max(inline["peak_rss_mb"], actors["peak_rss_mb"]),
        "inline_events_per_s_without_quoting": quiet["events_per_s"],
        "order_action_us": actions["us_per_action"],
        "tick_to_quote_us_median": ttq["median_us"],
        "tick_to_quote_us_p99": ttq["p99_us"],
        "cli_help_s": cli["median_s"],
        **_sign_keys(sign),
        **_w1m_keys(w1m),
        "workloads": {
            "engine": ENGINE_WORKLOAD | {"source": "synthetic", "config": "configs/market_maker.yaml"},
            "hbt": {"markets": 1, "events": HBT_EVENTS, "events_per_s": 2_000, "format": "hftbacktest npz"},
            "w1m": {
                "markets": 1,
                "events": 1_000_000,
                "format": "hftbacktest npz (bench/w1m.py, seed 7)",
                "config": "configs/market_maker.yaml, volatility pull off, zero latency, inputs not logged",
            },
            "tick_to_quote": {
                "markets": 50,
                "messages_per_s": 5_000,
                "transport": "WebSocket on 127.0.0.1 from a venue stand-in in another process",
                "path": "MarketWsClient decode -> FrameDispatcher -> market actor on the feed's loop -> port",
                "message": "price_change, one level and its NO mirror (the venue's shape)",
            },
        },
        "details": {
            "inline": inline,
            "actors": actors,
            "inline_without_quoting": quiet,
            "order_actions": actions,
            "hbt": hbt,
            "decide": dec,
            "tick_to_quote": ttq,
            "sign": sign,
            "w1m": w1m,
            "cli_help": cli,
        },
    }
    out_path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
