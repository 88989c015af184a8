"""A minimal Polygon JSON-RPC endpoint (``POST /rpc``): what the official client's merge needs.

``merge_positions`` in polymarket-client 0.14.0, for an EOA wallet, reads the wallet's two
balances with an ``eth_call`` of ERC-1155 ``balanceOfBatch``, then signs a legacy transaction
locally and broadcasts it (``eth_chainId``, ``eth_getTransactionCount``, ``eth_gasPrice``,
``eth_estimateGas``, ``eth_sendRawTransaction``) and polls ``eth_getTransactionReceipt``. This
module answers exactly those calls over the emulator's accounts:

* ``balanceOfBatch(address[], uint256[])`` on the CTF, the neg-risk adapter or PositionManager:
  each (owner, token or position id) pair's shares (``Accounts.token_balance``);
* a raw transaction is decoded (RLP), its sender recovered from the signature (eth-account), its
  chain id (EIP-155) and nonce checked, and its call applied: ``mergePositions(address, bytes32,
  bytes32, uint256[], uint256)`` sent to the collateral adapter (the neg-risk one for a neg-risk
  market) for a V1 market, ``merge(bytes31, uint256)`` sent to the Router for a Protocol V2 market.
  The merge moves the emulator's positions and collateral at once (``Accounts.merge_pairs``), and
  the transaction is "mined" then: its receipt (``status`` 0x1) is there on the first poll. A call
  the contract would refuse (too few free pairs, the wrong contract, an unknown condition) reverts at
  ``eth_estimateGas`` with the JSON-RPC revert error, as a node does, so nothing is sent.

Anything else is answered ``-32601 method not found``. Gas costs nothing here: the balance of POL is
not modelled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Final

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_utils.crypto import keccak

from emulator.state import VenueError

__all__ = ["CHAIN_ID", "CONTRACTS", "Chain", "MergeCall"]

CHAIN_ID: Final = 137
#: The Polygon contracts the official client (0.14.0, ``PRODUCTION``) sends merges and balance reads to.
CONTRACTS: Final = {
    "collateral_token": "0xC011a7E12a19f7B1f670d46F03B03f3342E82DFB",
    "collateral_adapter": "0xAdA100Db00Ca00073811820692005400218FcE1f",
    "neg_risk_collateral_adapter": "0xadA2005600Dec949baf300f4C6120000bDB6eAab",
    "conditional_tokens": "0x4D97DCd97eC945f40cF65F87097ACe5EA0476045",
    "neg_risk_adapter": "0xd91E80cF2E7be2e162c6513ceD06f1dD0dA35296",
    "position_manager": "0x006F54F7f9A22e0000CC2AB60031000000ae9fEF",
    "protocol_v2_router": "0x12121212006e4CD160D18e3f00711DA5c3372600",
}
#: What ``eth_gasPrice`` says (30 gwei) and a merge's gas (a CTF merge burns two ERC-1155 balances
#: and moves collateral: ~150k gas on Polygon).
GAS_PRICE_WEI: Final = 30_000_000_000
MERGE_GAS: Final = 150_000

_BALANCE_OF_BATCH: Final = keccak(b"balanceOfBatch(address[],uint256[])")[:4]
_CTF_MERGE: Final = keccak(b"mergePositions(address,bytes32,bytes32,uint256[],uint256)")[:4]
_ROUTER_MERGE: Final = keccak(b"merge(bytes31,uint256)")[:4]
_METHOD_NOT_FOUND: Final = -32601
_INVALID_PARAMS: Final = -32602
_REVERT: Final = 3


class MergeCall:
    """A decoded merge: the market's condition id and the pairs (1e-6 shares)."""

    __slots__ = ("condition_id", "qty")

    def __init__(self, condition_id: str, qty: int) -> None:
        self.condition_id = condition_id
        self.qty = qty


class _RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Chain:
    """The endpoint's state (nonces, receipts) over the venue's accounts; thread-safe.

    Args:
        accounts: The venue (``emulator.accounts.Accounts``): ``token_balance``, ``merge_pairs``,
            ``market_of_condition``.
        now_s: Seconds since the epoch (block timestamps).
    """

    def __init__(self, accounts: Any, now_s: Callable[[], int]) -> None:
        self.accounts = accounts
        self.now_s = now_s
        self._lock = threading.Lock()
        self._nonces: dict[str, int] = {}
        self._receipts: dict[str, dict[str, Any]] = {}
        self._block = 80_000_000
        self.merges: list[tuple[str, str, int]] = []  # (sender, condition id, qty), for tests

    def handle(self, request: Any) -> Any:
        """One JSON-RPC request (or a batch): the response object(s)."""
        if isinstance(request, list):
            return [self._one(r) for r in request]
        return self._one(request)

    def _one(self, request: Any) -> dict[str, Any]:
        rid = request.get("id") if isinstance(request, dict) else None
        try:
            if not isinstance(request, dict) or not isinstance(request.get("method"), str):
                raise _RpcError(-32600, "invalid request")
            params = request.get("params") or []
            if not isinstance(params, list):
                raise _RpcError(_INVALID_PARAMS, "params must be an array")
            result = self._call(request["method"], params)
        except _RpcError as exc:
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": exc.code, "message": exc.message}}
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    def _call(self, method: str, params: list[Any]) -> Any:
        match method:
            case "eth_chainId":
                return hex(CHAIN_ID)
            case "eth_blockNumber":
                return hex(self._block)
            case "eth_getBlockByNumber":
                return {"number": hex(self._block), "timestamp": hex(self.now_s())}
            case "eth_gasPrice":
                return hex(GAS_PRICE_WEI)
            case "eth_getTransactionCount":
                with self._lock:
                    return hex(self._nonces.get(_param_str(params, 0).lower(), 0))
            case "eth_call":
                call = _param_obj(params, 0)
                return self._eth_call(str(call.get("to", "")), str(call.get("data", "")))
            case "eth_estimateGas":
                call = _param_obj(params, 0)
                self._check_merge(
                    str(call.get("from", "")), str(call.get("to", "")), str(call.get("data", ""))
                )
                return hex(MERGE_GAS)
            case "eth_sendRawTransaction":
                return self._send_raw(_param_str(params, 0))
            case "eth_getTransactionReceipt":
                with self._lock:
                    return self._receipts.get(_param_str(params, 0).lower())
            case _:
                raise _RpcError(_METHOD_NOT_FOUND, f"the method {method} does not exist/is not available")

    # --- calls ---------------------------------------------------------------------------------------

    def _eth_call(self, to: str, data: str) -> str:
        raw = _hex_bytes(data)
        erc1155 = {
            CONTRACTS[k].lower() for k in ("conditional_tokens", "neg_risk_adapter", "position_manager")
        }
        if raw[:4] != _BALANCE_OF_BATCH or to.lower() not in erc1155:
            raise _RpcError(_REVERT, "execution reverted")
        try:
            owners, ids = abi_decode(["address[]", "uint256[]"], raw[4:])
        except Exception:
            raise _RpcError(_REVERT, "execution reverted: bad balanceOfBatch arguments") from None
        if len(owners) != len(ids):
            raise _RpcError(_REVERT, "execution reverted: ERC1155: accounts and ids length mismatch")
        balances = [self.accounts.token_balance(str(o), str(i)) for o, i in zip(owners, ids, strict=True)]
        return "0x" + abi_encode(["uint256[]"], [balances]).hex()

    def _decode_merge(self, to: str, data: str) -> MergeCall:
        raw = _hex_bytes(data)
        to = to.lower()
        try:
            if raw[:4] == _CTF_MERGE:
                collateral, parent, condition, partition, amount = abi_decode(
                    ["address", "bytes32", "bytes32", "uint256[]", "uint256"], raw[4:]
                )
                cid = "0x" + bytes(condition).hex()
                found = self.accounts.market_of_condition(cid)
                if found is None or found[1] != "v1":
                    raise _RpcError(_REVERT, "execution reverted: condition not prepared")
                adapter = "neg_risk_collateral_adapter" if found[2] else "collateral_adapter"
                if to != CONTRACTS[adapter].lower():
                    raise _RpcError(
                        _REVERT, f"execution reverted: merge sent to {to}, not the market's {adapter}"
                    )
                if (
                    str(collateral).lower() != CONTRACTS["collateral_token"].lower()
                    or bytes(parent) != b"\0" * 32
                    or list(partition) != [1, 2]
                ):
                    raise _RpcError(_REVERT, "execution reverted: not a binary merge into pUSD")
                return MergeCall(found[0], int(amount))
            if raw[:4] == _ROUTER_MERGE:
                condition, amount = abi_decode(["bytes31", "uint256"], raw[4:])
                found = self.accounts.market_of_condition("0x" + bytes(condition).hex())
                if found is None or found[1] != "v2":
                    raise _RpcError(_REVERT, "execution reverted: unknown market")
                if to != CONTRACTS["protocol_v2_router"].lower():
                    raise _RpcError(_REVERT, "execution reverted: merge sent to the wrong router")
                return MergeCall(found[0], int(amount))
        except _RpcError:
            raise
        except Exception:
            raise _RpcError(_REVERT, "execution reverted: undecodable call") from None
        raise _RpcError(_REVERT, "execution reverted: not a merge")

    def _check_merge(self, sender: str, to: str, data: str) -> MergeCall:
        call = self._decode_merge(to, data)
        try:
            self.accounts.merge_pairs(sender, call.condition_id, call.qty, dry=True)
        except VenueError as exc:
            raise _RpcError(_REVERT, f"execution reverted: {exc.body.get('error', exc)}") from None
        return call

    def _send_raw(self, signed_hex: str) -> str:
        raw = _hex_bytes(signed_hex)
        try:
            fields = _rlp_list(raw)
            sender = str(Account.recover_transaction(raw))
        except Exception:
            raise _RpcError(_INVALID_PARAMS, "invalid raw transaction") from None
        parts = [f for f in fields if isinstance(f, bytes)]
        if len(fields) != 9 or len(parts) != 9:
            raise _RpcError(_INVALID_PARAMS, "only legacy (EIP-155) transactions are served")
        nonce_b, _, _, to_b, _, data_b, v_b, _, _ = parts
        v = int.from_bytes(v_b, "big")
        if (v - 35) // 2 != CHAIN_ID:
            raise _RpcError(_INVALID_PARAMS, f"invalid chain id: v={v}")
        tx_hash = "0x" + keccak(raw).hex()
        with self._lock:
            key = sender.lower()
            nonce = int.from_bytes(nonce_b, "big")
            if nonce != self._nonces.get(key, 0):
                raise _RpcError(
                    -32000, f"nonce too low: next nonce {self._nonces.get(key, 0)}, tx nonce {nonce}"
                )
            call = self._check_merge(sender, "0x" + to_b.hex(), "0x" + data_b.hex())
            self.accounts.merge_pairs(sender, call.condition_id, call.qty)
            self._nonces[key] = nonce + 1
            self._block += 1
            self.merges.append((sender, call.condition_id, call.qty))
            self._receipts[tx_hash] = {
                "transactionHash": tx_hash,
                "status": "0x1",
                "blockNumber": hex(self._block),
                "from": sender,
                "to": "0x" + to_b.hex(),
                "gasUsed": hex(MERGE_GAS),
                "effectiveGasPrice": hex(GAS_PRICE_WEI),
                "logs": [],
            }
        return tx_hash


def _param_str(params: list[Any], i: int) -> str:
    if len(params) <= i or not isinstance(params[i], str):
        raise _RpcError(_INVALID_PARAMS, f"param {i} must be a string")
    return str(params[i])


def _param_obj(params: list[Any], i: int) -> dict[str, Any]:
    if len(params) <= i or not isinstance(params[i], dict):
        raise _RpcError(_INVALID_PARAMS, f"param {i} must be an object")
    return dict(params[i])


def _hex_bytes(text: str) -> bytes:
    try:
        return bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise _RpcError(_INVALID_PARAMS, "invalid hex") from None


RlpItem = bytes | list["RlpItem"]


def _rlp_list(raw: bytes) -> list[RlpItem]:
    """The top-level RLP list of ``raw`` (a legacy transaction's nine fields)."""
    item, end = _rlp_item(raw, 0)
    if end != len(raw) or not isinstance(item, list):
        raise ValueError("not one RLP list")
    return item


def _rlp_item(raw: bytes, i: int) -> tuple[RlpItem, int]:
    b = raw[i]
    if b < 0x80:
        return raw[i : i + 1], i + 1
    if b < 0xB8:
        n = b - 0x80
        return raw[i + 1 : i + 1 + n], i + 1 + n
    if b < 0xC0:
        ll = b - 0xB7
        n = int.from_bytes(raw[i + 1 : i + 1 + ll], "big")
        start = i + 1 + ll
        return raw[start : start + n], start + n
    if b < 0xF8:
        n, start = b - 0xC0, i + 1
    else:
        ll = b - 0xF7
        n, start = int.from_bytes(raw[i + 1 : i + 1 + ll], "big"), i + 1 + ll
    out: list[RlpItem] = []
    j = start
    while j < start + n:
        item, j = _rlp_item(raw, j)
        out.append(item)
    if j != start + n or start + n > len(raw):
        raise ValueError("truncated RLP list")
    return out, j
