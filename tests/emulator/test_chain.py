"""The emulator's JSON-RPC (``POST /rpc``): the calls of the official client's merge, and their refusals."""

from __future__ import annotations

import httpx
import msgspec
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_utils.crypto import keccak

from core.units import QTY_ONE
from emulator import Emulator
from emulator.chain import CHAIN_ID, CONTRACTS, GAS_PRICE_WEI
from tests.emulator.conftest import KEY_A, NEGRISK, QUIET, ids, make_scenario

SHARES = 50 * QTY_ONE
MERGE = keccak(b"mergePositions(address,bytes32,bytes32,uint256[],uint256)")[:4]


def emulator() -> Emulator:
    sc = make_scenario()
    return Emulator(
        msgspec.structs.replace(sc, account=msgspec.structs.replace(sc.account, shares_qty=SHARES))
    )


def rpc(emu: Emulator, method: str, *params: object) -> dict:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    return httpx.post(emu.rpc_url, json=body, timeout=10).json()


def merge_data(condition_id: str, qty: int, partition=(1, 2)) -> str:
    args = [CONTRACTS["collateral_token"], b"\0" * 32, bytes.fromhex(condition_id[2:]), list(partition), qty]
    return "0x" + (MERGE + abi_encode(["address", "bytes32", "bytes32", "uint256[]", "uint256"], args)).hex()


def signed(to: str, data: str, nonce: int = 0, chain_id: int = CHAIN_ID) -> str:
    tx = {
        "to": to,
        "value": 0,
        "data": data,
        "gas": 150_000,
        "gasPrice": 1,
        "nonce": nonce,
        "chainId": chain_id,
    }
    return "0x" + Account.sign_transaction(tx, KEY_A).raw_transaction.hex()


def test_the_official_contract_addresses_are_the_sdks():
    from polymarket import PRODUCTION  # noqa: PLC0415

    for name, address in CONTRACTS.items():
        assert getattr(PRODUCTION._config, name) == address, name
    assert PRODUCTION._config.chain_id == CHAIN_ID


def test_balances_nonce_and_a_merge_by_raw_transaction():
    with emulator() as emu:
        m = ids(emu, QUIET)
        me = Account.from_key(KEY_A).address
        call = (
            "0x"
            + (
                keccak(b"balanceOfBatch(address[],uint256[])")[:4]
                + abi_encode(
                    ["address[]", "uint256[]"], [[me, me], [int(m["yes_token"]), int(m["no_token"])]]
                )
            ).hex()
        )
        adapter = CONTRACTS["collateral_adapter"]

        assert rpc(emu, "eth_chainId")["result"] == hex(CHAIN_ID)
        assert rpc(emu, "eth_gasPrice")["result"] == hex(GAS_PRICE_WEI)
        bal = rpc(emu, "eth_call", {"to": CONTRACTS["conditional_tokens"], "data": call}, "latest")["result"]
        assert bal == "0x" + abi_encode(["uint256[]"], [[SHARES, SHARES]]).hex()
        # A merge of more than is held reverts at the estimate, as a node's would.
        too_many = rpc(
            emu, "eth_estimateGas", {"from": me, "to": adapter, "data": merge_data(m["market"], SHARES + 1)}
        )
        assert too_many["error"]["code"] == 3 and "execution reverted" in too_many["error"]["message"]
        # The neg-risk market's merge goes through the neg-risk adapter, not this one.
        neg = ids(emu, NEGRISK)
        wrong = rpc(
            emu, "eth_estimateGas", {"from": me, "to": adapter, "data": merge_data(neg["market"], QTY_ONE)}
        )
        assert "neg_risk_collateral_adapter" in wrong["error"]["message"]

        tx = rpc(emu, "eth_sendRawTransaction", signed(adapter, merge_data(m["market"], 7 * QTY_ONE)))[
            "result"
        ]
        receipt = rpc(emu, "eth_getTransactionReceipt", tx)["result"]

        assert receipt["status"] == "0x1" and receipt["transactionHash"] == tx
        assert rpc(emu, "eth_getTransactionCount", me, "pending")["result"] == "0x1"
        bal = rpc(emu, "eth_call", {"to": CONTRACTS["conditional_tokens"], "data": call}, "latest")["result"]
        assert bal == "0x" + abi_encode(["uint256[]"], [[SHARES - 7 * QTY_ONE] * 2]).hex()
        # Replayed (same nonce), or signed for another chain: refused, nothing moves.
        again = rpc(emu, "eth_sendRawTransaction", signed(adapter, merge_data(m["market"], QTY_ONE)))
        assert "nonce too low" in again["error"]["message"]
        other = rpc(emu, "eth_sendRawTransaction", signed(adapter, merge_data(m["market"], QTY_ONE), 1, 1))
        assert "chain id" in other["error"]["message"]
        assert emu.chain.merges == [(me, m["market"], 7 * QTY_ONE)]
        assert rpc(emu, "eth_getTransactionReceipt", "0x" + "00" * 32)["result"] is None
        assert rpc(emu, "eth_mining")["error"]["code"] == -32601
        assert rpc(emu, "eth_sendRawTransaction", "0x1234")["error"]["code"] == -32602


def test_the_official_client_merges_a_protocol_v2_market_through_the_router():
    from adapters.polymarket.clob_port import PolymarketVenue, connect_venue  # noqa: PLC0415
    from adapters.polymarket.sdk import environment_for  # noqa: PLC0415
    from adapters.polymarket.secrets import Secret  # noqa: PLC0415
    from core.markets import MarketInfo  # noqa: PLC0415
    from core.units import Outcome  # noqa: PLC0415
    from emulator.scenario import MarketConfig  # noqa: PLC0415

    sc = make_scenario()
    v2 = MarketConfig(slug="v2-market", question="V2?", version="v2", flow=sc.markets[0].flow)
    sc = msgspec.structs.replace(
        sc, markets=(*sc.markets, v2), account=msgspec.structs.replace(sc.account, shares_qty=SHARES)
    )
    with Emulator(sc) as emu:
        conn = connect_venue(environment_for(emu.clob_url), Secret(KEY_A))
        m = ids(emu, "v2-market")
        info = MarketInfo(market=m["market"], yes_token=m["yes_token"], no_token=m["no_token"], version="v2")
        venue = PolymarketVenue(conn.client, conn.signer, [info])

        tx = venue.merge(info, 20 * QTY_ONE)

        assert tx.startswith("0x")
        assert [venue.balance_qty(info, o) for o in Outcome] == [SHARES - 20 * QTY_ONE] * 2
        assert emu.chain.merges == [(conn.signer.address, m["market"], 20 * QTY_ONE)]
