"""Merging YES+NO pairs in the simulator: decided by the session, applied by the simulated venue."""

from __future__ import annotations

import hashlib

import msgspec
import pytest

from app.configfile import load_config
from core.inventory import mark_to_market, marked_pnl_usdc6
from core.quoting import quote_params
from core.units import NS_PER_MS, PX_ONE, QTY_ONE, Outcome, notional_usdc6
from sim.eventcols import ColumnReader
from sim.runner import Runner, RunSettings
from sim.summary import run_summary
from tests.sim.tapes import random_walk_tape

MERGING = msgspec.structs.replace(
    quote_params(load_config("configs/market_maker.yaml")),
    merge_enabled=True,
    merge_min_pairs_qty=5 * QTY_ONE,
)
SETTINGS = RunSettings(global_ev_cap_usdc6=500_000_000)


def run(engine: str, resolve: bool | None = True, params=MERGING) -> tuple[Runner, bytes]:
    tapes = [random_walk_tape(i, 3_000, 11, resolve=resolve) for i in range(2)]
    runner = Runner(tapes, params, SETTINGS, 11)
    runner.run(engine)
    return runner, b"".join(ColumnReader.of(runner.log).all_lines())


def records(data: bytes, *kinds: str) -> list[dict]:
    out = [msgspec.json.decode(line) for line in data.splitlines()]
    return [r for r in out if r["kind"] in kinds]


def test_merges_are_logged_alike_in_both_engines_and_confirmed_after_the_merge_latency():
    runner, inline = run("inline")
    _, actors = run("actors")

    assert hashlib.sha256(inline).hexdigest() == hashlib.sha256(actors).hexdigest()
    sent = {r["merge_id"]: r for r in records(inline, "merge")}
    done = {r["merge_id"]: r for r in records(inline, "merged")}
    assert sent and set(done) == set(sent)
    latency_ns = round(SETTINGS.latency.order_ms * NS_PER_MS) + round(SETTINGS.latency.merge_ms * NS_PER_MS)
    for merge_id, r in sent.items():
        assert done[merge_id]["qty"] == r["qty"] >= 5 * QTY_ONE
        assert done[merge_id]["ts_ns"] - r["ts_ns"] == latency_ns
    s = run_summary(runner.lanes)
    assert s["merges"]["count"] == len(done)
    assert s["merges"]["pairs_shares"] == sum(r["qty"] for r in done.values()) / QTY_ONE
    assert s["merges"]["failed"] == 0


def test_merged_pairs_leave_shares_cash_and_pnl_exact():
    runner, data = run("inline", resolve=None)

    merged = records(data, "merged")
    assert merged
    for lane in runner.lanes:
        inv = lane.session.inv
        pairs = sum(r["qty"] for r in merged if r["market"] == lane.market)
        # Shares: every fill, less every merged pair; cash: every fill's cash, plus 1 Usdc6 per pair.
        fills = [r for r in records(data, "fill") if r["market"] == lane.market]
        assert len(fills) == len(lane.exchange.fills)
        yes = sum(f["side"] * f["qty"] for f in fills if f["outcome"] == Outcome.YES) - pairs
        no = sum(f["side"] * f["qty"] for f in fills if f["outcome"] == Outcome.NO) - pairs
        cash = -sum(f["side"] * notional_usdc6(f["px"], f["qty"]) + f["fee_usdc6"] for f in fills) + pairs
        assert (inv.yes_qty, inv.no_qty, inv.cash_usdc6) == (yes, no, cash)
        # PnL against cost is the marked value at any mid, merges and all (the session started flat).
        for mid in (0, 1_234, 5_000, PX_ONE):
            assert marked_pnl_usdc6(inv, mid) == mark_to_market(inv, mid)


def test_settled_cash_with_merges_is_the_summary_pnl():
    runner, data = run("inline")
    s = run_summary(runner.lanes)

    assert records(data, "merged")
    for lane, per in zip(runner.lanes, s["per_market"], strict=True):
        assert lane.session.resolved
        assert per["pnl_usdc"]["total"] == round(lane.session.inv.cash_usdc6 / 1e6, 6)


@pytest.mark.parametrize("engine", ["inline"])
def test_merge_off_sends_no_merge(engine):
    _, data = run(engine, params=msgspec.structs.replace(MERGING, merge_enabled=False))

    assert records(data, "merge", "merged", "merge_failed") == []
