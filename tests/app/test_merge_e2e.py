"""A merge of YES+NO pairs through the live path, end to end against the exchange emulator on 127.0.0.1.

The real gateway and ledger, the official client's real ``merge_positions`` (EOA: a transaction signed
locally and broadcast to the emulator's JSON-RPC), the emulator's positions and collateral: the
ledger's inventory, cash and PnL after the merge are exactly ``apply_merge`` of those before, the
venue holds exactly the pairs fewer and the collateral more, and the periodic position check never
takes the merge for a drift.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

import msgspec
from eth_account import Account

from actors.gateway import GetGatewayStatus, GetPositions, SetSink, Shutdown, Startup
from actors.market import HoldQuotes
from core.inventory import apply_merge, mark_to_market, marked_pnl_usdc6
from core.messages import Merge, Merged, MergeFailed
from core.units import PX_ONE, QTY_ONE
from emulator import Emulator
from emulator.scenario import HttpFault
from tests.actors.venue_fake import Routed
from tests.app.test_live_truth_e2e import connect, gateway, info, venue_shares, wait_for
from tests.emulator.conftest import NEGRISK, QUIET, make_scenario
from tests.fakes import ListSink

SHARES = 50 * QTY_ONE  # every account starts with 50 YES and 50 NO in every market (a split)


def split_scenario() -> Any:
    """The emulator's test scenario with every account holding SHARES of YES and of NO in every market."""
    scenario = make_scenario()
    return msgspec.structs.replace(
        scenario, account=msgspec.structs.replace(scenario.account, shares_qty=SHARES)
    )


def collateral_usdc6(client: Any) -> int:
    return int(client.get_balance_allowance(asset_type="COLLATERAL").balance)


def test_a_merge_through_the_official_client_leaves_inventory_cash_and_pnl_exact():
    with Emulator(split_scenario(), port=0) as emu:
        conn = connect(emu, str(Account.create().key.hex()))
        client = conn.client
        quiet, neg = info(emu, QUIET), info(emu, NEGRISK, tick_px=10, neg_risk=True)
        routed, sink = Routed(), ListSink()
        gw, port, _ = gateway(conn, [quiet, neg], routed, reconcile_interval_s=0.2)
        gw.tell(SetSink(sink))
        try:
            gw.ask(Startup(), timeout=30)
            before = gw.ask(GetPositions(), timeout=10)
            assert (before[quiet.market].yes_qty, before[quiet.market].no_qty) == (SHARES, SHARES)
            cash0 = collateral_usdc6(client)
            q = 20 * QTY_ONE + 123_457  # any 1e-6 amount: the token's base unit

            port.submit([Merge(market=quiet.market, merge_id="quiet-m1", qty=q)])
            port.submit([Merge(market=neg.market, merge_id="neg-m1", qty=SHARES + 1)])  # more than held

            [done] = wait_for(lambda: routed.of(Merged), what="the merge's confirmation")
            [failed] = wait_for(lambda: routed.of(MergeFailed), what="the refused merge")
            assert (done.market, done.merge_id, done.qty) == (quiet.market, "quiet-m1", q)
            assert done.tx.startswith("0x") and len(done.tx) == 66
            # The official client checks the on-chain balances (our balanceOfBatch) before it signs anything.
            assert failed.merge_id == "neg-m1" and "exceeds the maximum mergeable amount" in failed.reason
            # The venue: exactly q pairs fewer, exactly q usdc6 more; nothing moved in the other market.
            assert venue_shares(client, quiet) == (SHARES - q, SHARES - q)
            assert venue_shares(client, neg) == (SHARES, SHARES)
            assert collateral_usdc6(client) == cash0 + q
            assert emu.chain.merges == [(conn.signer.address, quiet.market, q)]
            # The ledger: apply_merge exactly; the value and the PnL at any mid unchanged.
            after = gw.ask(GetPositions(), timeout=10)
            inv0, inv1 = before[quiet.market], after[quiet.market]
            assert inv1 == apply_merge(inv0, q)
            assert inv1.cash_usdc6 - inv0.cash_usdc6 == q
            assert inv1.realized_usdc6 - inv0.realized_usdc6 == q - (
                inv0.yes_cost_usdc6 - inv1.yes_cost_usdc6 + inv0.no_cost_usdc6 - inv1.no_cost_usdc6
            )
            for mid in (0, 3_333, 5_000, PX_ONE):
                assert marked_pnl_usdc6(inv1, mid) == marked_pnl_usdc6(inv0, mid)
                assert mark_to_market(inv1, mid) == mark_to_market(inv0, mid)
            assert after[neg.market] == before[neg.market]
            # Several position checks later: the listings agree, nothing was held or resynced.
            seen = gw.ask(GetGatewayStatus(), timeout=10).reconciles
            wait_for(
                lambda: gw.ask(GetGatewayStatus(), timeout=10).reconciles >= seen + 3, what="3 reconciles"
            )
            assert gw.ask(GetPositions(), timeout=10)[quiet.market] == inv1
            drifts = [p for p in sink.kinds("ledger") if isinstance(p, dict) and p.get("event") == "drift"]
            assert drifts == [] and routed.of(HoldQuotes) == []
            status = gw.ask(GetGatewayStatus(), timeout=10)
            assert (status.merges, status.merge_failures) == (1, 1)
        finally:
            gw.ask(Shutdown(), timeout=30)
            gw.stop()


def test_a_merge_while_the_chain_rpc_is_down_is_settled_by_the_listings_and_the_next_one_goes_through():
    # Polygon's RPC answering 503: the official client raises without saying whether anything was
    # sent, so the gateway books nothing and lets the position listings settle it; they never show
    # the pairs gone, so the merge fails once the settle timeout has passed (no drift meanwhile), and
    # with the RPC back the next merge goes through.
    with Emulator(split_scenario(), port=0) as emu:
        conn = connect(emu, str(Account.create().key.hex()))
        client = conn.client
        quiet = info(emu, QUIET)
        routed, sink = Routed(), ListSink()
        gw, port, _ = gateway(conn, [quiet], routed, reconcile_interval_s=0.2, settle_timeout_s=2.0)
        gw.tell(SetSink(sink))
        try:
            gw.ask(Startup(), timeout=30)
            before = gw.ask(GetPositions(), timeout=10)[quiet.market]
            cash0 = collateral_usdc6(client)
            rpc_down = HttpFault(status=503, message="rpc unavailable", routes=("POST /rpc",))
            down = emu.venue.faults.add(rpc_down, emu.venue.elapsed_ms())

            port.submit([Merge(market=quiet.market, merge_id="m-down", qty=10 * QTY_ONE)])

            wait_for(lambda: sink.kinds("ledger") and any(
                isinstance(p, dict) and p.get("event") == "merge_in_doubt" for p in sink.kinds("ledger")
            ), what="the merge in doubt")  # fmt: skip
            assert gw.ask(GetPositions(), timeout=10)[quiet.market] == before  # nothing booked on a guess
            [failed] = wait_for(lambda: routed.of(MergeFailed), what="the listings to settle it")
            assert failed.merge_id == "m-down" and "listings never showed it" in failed.reason, failed
            assert routed.of(Merged) == [] and emu.chain.merges == []
            assert venue_shares(client, quiet) == (SHARES, SHARES)
            assert collateral_usdc6(client) == cash0
            assert gw.ask(GetPositions(), timeout=10)[quiet.market] == before

            assert emu.venue.faults.remove(down) == [down]
            port.submit([Merge(market=quiet.market, merge_id="m-up", qty=10 * QTY_ONE)])
            [done] = wait_for(lambda: routed.of(Merged), what="the merge once the RPC is back")
            assert (done.merge_id, done.qty) == ("m-up", 10 * QTY_ONE)
            assert venue_shares(client, quiet) == (SHARES - 10 * QTY_ONE, SHARES - 10 * QTY_ONE)
            assert gw.ask(GetPositions(), timeout=10)[quiet.market] == apply_merge(before, 10 * QTY_ONE)
            drifts = [p for p in sink.kinds("ledger") if isinstance(p, dict) and p.get("event") == "drift"]
            assert drifts == [] and routed.of(HoldQuotes) == []
        finally:
            gw.ask(Shutdown(), timeout=30)
            gw.stop()
