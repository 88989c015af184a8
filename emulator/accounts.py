"""The venue's accounts: opening them, collateral shared across markets, balance checks, the
``/balance-allowance`` view, heartbeats (the dead-man switch) and request counters.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from typing import Any

from core.messages import Place
from core.units import (
    PX_ONE,
    USDC10_PER_USDC6,
    Outcome,
    Qty,
    Side,
)
from emulator.auth import ApiCreds
from emulator.channels import Channels
from emulator.protocol import EXCHANGE_V3, V2_ASSET_TYPE
from emulator.state import (
    ALLOWANCE_MAX,
    EXCHANGE_ADDRESSES,
    RESTING,
    Account,
    MarketState,
    VenueError,
)
from venue.matching import (
    REASON_BALANCE,
    fee_bound_usdc6,
)

__all__ = ["Accounts"]


class Accounts(Channels):
    """Accounts, collateral and heartbeats (see the module docstring)."""

    def register(self, creds: ApiCreds) -> None:
        """Open the account of a key's address (on key creation or derivation)."""
        with self.lock:
            self._user(creds.address)

    def count_request(self, address: str, kind: str, n_orders: int = 0) -> None:
        """Count one order request (place, batch, cancel…) for the address it claims to come from."""
        with self.lock:
            c = self._requests.setdefault(address.lower() or "?", Counter())
            c[kind] += 1
            c["total"] += 1
            if n_orders:
                c["orders"] += n_orders

    def _free_cash(self, user: Account) -> int:
        total = user.cash0 + user.adj_cash_usdc6
        for m in self._markets:
            b = m.engine.balance(user.address)
            total += b.cash_usdc6 - b.locked_cash_usdc6
        return total

    def _total_cash(self, user: Account) -> int:
        return (
            user.cash0
            + user.adj_cash_usdc6
            + sum(m.engine.balance(user.address).cash_usdc6 for m in self._markets)
        )

    def _shares(self, user: Account, m: MarketState, outcome: Outcome) -> tuple[Qty, Qty]:
        """``(held, locked)`` shares of one token: the engine's, plus what FAILED trades gave back."""
        b = m.engine.balance(user.address)
        adj = user.adj_qty.get((m.market, outcome), 0)
        if outcome is Outcome.YES:
            return b.yes_qty + adj, b.locked_yes_qty
        return b.no_qty + adj, b.locked_no_qty

    def _balance_reason(self, m: MarketState, user: Account, p: Place) -> str:
        # Collateral is shared by every market, so the venue checks it across engines. Checks the
        # engine makes first (tick, size, TIF, post-only cross) are left to the engine and its words.
        eng = m.engine
        tick = eng.tick_px
        resting = p.tif in RESTING
        if p.px % tick or not tick <= p.px <= PX_ONE - tick or (p.post_only and not resting):
            return ""
        if resting and p.qty < eng.min_qty:
            return ""
        if not resting and p.px * p.qty < eng.min_marketable_usdc6 * USDC10_PER_USDC6:  # exact, in Usdc10
            return ""
        if p.side is Side.BUY:
            best = eng.best_ask(p.outcome)
            crosses = best is not None and best <= p.px
        else:
            best = eng.best_bid(p.outcome)
            crosses = best is not None and best >= p.px
        if p.post_only and crosses:
            return ""
        if p.side is Side.BUY:
            # Exact in Usdc10 (a user's order is on the 0.01-share grid, so its cash is a whole Usdc6).
            fee = fee_bound_usdc6(p.px, p.qty, eng.fee_rate_ppm) if crosses else 0
            need = p.px * p.qty + fee * USDC10_PER_USDC6
            return REASON_BALANCE if need > self._free_cash(user) * USDC10_PER_USDC6 else ""
        held, locked = self._shares(user, m, p.outcome)
        return REASON_BALANCE if p.qty > held - locked else ""

    def token_balance(self, address: str, token_id: str) -> Qty:
        """Shares of ``token_id`` held by ``address`` (the on-chain ``balanceOf``; 0 for an unknown token).

        Every address has an account on chain: asking opens it (funded as the scenario says).
        """
        with self.lock:
            found = self._tokens.get(token_id)
            if found is None:
                return 0
            m, outcome = found
            return self._shares(self._user(address), m, outcome)[0]

    def market_of_condition(self, prefix: str) -> tuple[str, str, bool] | None:
        """``(condition id, version, neg_risk)`` of the market whose condition id starts with ``prefix``."""
        prefix = prefix.lower()
        with self.lock:
            for m in self._markets:
                if m.market.lower().startswith(prefix):
                    return m.market, m.cfg.version, m.cfg.neg_risk
        return None

    def merge_pairs(self, address: str, condition_id: str, qty: Qty, *, dry: bool = False) -> None:
        """Merge ``qty`` YES+NO pairs of ``address`` in one market into ``qty`` Usdc6 of collateral.

        Only shares no resting sell reserves; ``dry`` only checks (a gas estimate).

        Raises:
            VenueError: No such market, or fewer free pairs than ``qty`` (the contract would revert).
        """
        with self.lock:
            m = self._by_cid.get(condition_id)
            if m is None:
                raise VenueError(400, f"unknown condition {condition_id}")
            user = self._user(address)
            free = min(held - locked for held, locked in (self._shares(user, m, o) for o in Outcome))
            if not 0 < qty <= free:
                raise VenueError(400, f"cannot merge {qty} pairs: {max(free, 0)} free (1e-6 shares)")
            if dry:
                return
            # What FAILED trades gave back is outside the engine: it is merged first.
            b = m.engine.balance(user.address)
            engine_free = min(b.yes_qty - b.locked_yes_qty, b.no_qty - b.locked_no_qty)
            from_engine = max(0, min(qty, engine_free))
            if from_engine:
                m.engine.merge(user.address, from_engine)
            rest = qty - from_engine
            if rest:
                for o in Outcome:
                    key = (m.market, o)
                    user.adj_qty[key] = user.adj_qty.get(key, 0) - rest
                user.adj_cash_usdc6 += rest

    def balance_allowance(self, creds: ApiCreds, asset_type: str, token_id: str) -> dict[str, Any]:
        """``GET /balance-allowance``: collateral or one token's shares, in 6-decimal units.

        ``CONDITIONAL`` asks about a V1 (CTF) token, ``CONDITIONAL-V2`` about a Protocol V2 position
        (held in PositionManager, approved to ExchangeV3); asking with the other protocol's type is a
        400 that names the right one (the venue's reply to it is not documented).
        """
        with self.lock:
            user = self._user(creds.address)
            kind = asset_type.upper()
            match kind:
                case "COLLATERAL" | "":
                    balance = self._total_cash(user)
                    spenders: tuple[str, ...] = (*EXCHANGE_ADDRESSES, EXCHANGE_V3)
                case "CONDITIONAL" | "CONDITIONAL-V2":
                    if not token_id:
                        raise VenueError(400, f"token_id is required for asset_type {kind}")
                    m, outcome = self._find(token_id)
                    v2 = m.cfg.version == "v2"
                    if v2 != (kind == V2_ASSET_TYPE):
                        raise VenueError(
                            400,
                            f"invalid asset_type {kind} for token id {token_id}: "
                            + (
                                f"a Protocol V2 position uses {V2_ASSET_TYPE}"
                                if v2
                                else "a V1 (CTF) token uses CONDITIONAL"
                            ),
                        )
                    balance = self._shares(user, m, outcome)[0]  # Qty is the token unit
                    spenders = (EXCHANGE_V3,) if v2 else EXCHANGE_ADDRESSES
                case _:
                    raise VenueError(400, f"invalid asset_type {asset_type!r}")
            return {"balance": str(balance), "allowances": dict.fromkeys(spenders, ALLOWANCE_MAX)}

    def heartbeat(self, creds: ApiCreds, heartbeat_id: str | None) -> dict[str, Any]:
        """``POST /v1/heartbeats``: arm or feed the dead-man switch; a stale id is refused.

        The first beat sends ``""`` (or null) and gets an id; each next one sends the last id. A stale
        id is a 400 ``{"error_msg": "Invalid Heartbeat ID", "heartbeat_id": <current>}`` (the official
        client raises ``OrderHeartbeatMismatchError`` with it; the current id is "" after a legacy beat).
        An empty id is always accepted and starts a new chain.
        """
        with self.lock:
            user = self._user(creds.address)
            if heartbeat_id and user.hb_armed and heartbeat_id != user.hb_id:
                raise VenueError(
                    400,
                    "Invalid Heartbeat ID",
                    {"error_msg": "Invalid Heartbeat ID", "heartbeat_id": user.hb_id},  # the venue's body
                )
            self._hb_seq += 1
            digest = hashlib.sha256(f"{self.seed}:heartbeat:{self._hb_seq}".encode()).digest()
            user.hb_id = str(uuid.UUID(bytes=digest[:16], version=4))
            user.hb_armed = True
            user.hb_count += 1
            user.hb_last_ns = self.now_ns()
            return {"status": "ok", "heartbeat_id": user.hb_id}

    def legacy_heartbeat(self, creds: ApiCreds) -> dict[str, Any]:
        """``POST /heartbeats`` (the venue's legacy, unchained beat): arms or feeds the switch.

        Answers ``{"status": "ok"}``; the ``/v1`` chain restarts, so the id the next ``/v1`` beat must
        send is "" (a stale one is told so by the mismatch reply).
        """
        with self.lock:
            user = self._user(creds.address)
            user.hb_id = ""
            user.hb_armed = True
            user.hb_last_ns = self.now_ns()
            return {"status": "ok"}
