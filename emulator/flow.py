"""The other participants of an emulated market: synthetic makers and takers, or a replayed recording.

Flow only ever *buys* (a BUY YES is a bid, a BUY NO at ``1 - p`` an ask on the YES book), so it
never needs shares; its cash may go negative (the engine runs without balance checks for it).
Whatever rests at the touch, the bot's quotes included, is what its takers hit first.

Randomness comes from the ``random.Random`` handed in (seeded by the scenario); time comes in as
``now_ns`` on every ``step``.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable
from typing import Final, Protocol

from core.messages import BookSnapshot, Cancel, Command, Place
from core.units import PX_ONE, QTY_ONE, Outcome, Px, Qty, Side, ceil_to_tick, floor_to_tick
from emulator.scenario import FlowConfig
from sim.tape import OP_ASK, OP_BID, OP_BUY, OP_SELL, OP_SPECIAL, MarketTape
from venue.matching import MatchingEngine, Report

__all__ = [
    "FLOW_MAKER",
    "FLOW_TAKER",
    "REPLAY",
    "SEED",
    "Flow",
    "ReplayFlow",
    "Submit",
    "SyntheticFlow",
    "flow_order_id",
]

#: Owners of the emulator's own participants (never an address, so never a user account).
FLOW_MAKER: Final = "flow-maker"
FLOW_TAKER: Final = "flow-taker"
SEED: Final = "seed"
REPLAY: Final = "replay"

_NS_PER_S: Final = 1_000_000_000

#: Apply one participant command to the market; the venue publishes what it changed.
Submit = Callable[[str, Command], Report]


class Flow(Protocol):
    """One market's other participants."""

    def step(self, now_ns: int, engine: MatchingEngine, submit: Submit) -> None:
        """Act for the time elapsed up to ``now_ns``."""
        ...


def flow_order_id(seed: int, market: str, n: int) -> str:
    """An order id for a participant's order that looks like the venue's (``0x`` + 64 hex)."""
    return "0x" + hashlib.sha256(f"{seed}:{market}:{n}".encode()).hexdigest()


def _buy(
    market: str, client_id: str, yes_px: Px, is_bid: bool, qty: Qty, tif: str, *, post_only: bool = False
) -> Place:
    # A bid is a BUY YES at p; an ask is a BUY NO at 1 - p.
    outcome, px = (Outcome.YES, yes_px) if is_bid else (Outcome.NO, PX_ONE - yes_px)
    return Place(
        market=market,
        client_id=client_id,
        outcome=outcome,
        side=Side.BUY,
        px=px,
        qty=qty,
        post_only=post_only,
        tif="GTC" if tif == "GTC" else "FAK",
    )


class SyntheticFlow:
    """Seeded makers around a random-walk fair value and Poisson takers at the touch.

    Args:
        cfg: The flow settings.
        market: Condition id.
        fair_px: Starting YES fair value.
        rng: The market's seeded randomness.
        seed: Scenario seed (order ids).
        start_ns: Time of the first step.
    """

    def __init__(
        self, cfg: FlowConfig, market: str, fair_px: Px, rng: random.Random, seed: int, start_ns: int
    ) -> None:
        self.cfg = cfg
        self.market = market
        self.fair = float(fair_px)
        self._rng = rng
        self._seed = seed
        self._last_ns = start_ns
        self._next_refresh_ns = start_ns
        self._next_taker_ns = start_ns + self._gap_ns()
        self._seq = 0
        self._live: list[str] = []

    def _gap_ns(self) -> int:
        rate = self.cfg.taker_rate_per_s
        return int(self._rng.expovariate(rate) * _NS_PER_S) if rate > 0 else 2**62

    def _id(self) -> str:
        self._seq += 1
        return flow_order_id(self._seed, self.market, self._seq)

    def step(self, now_ns: int, engine: MatchingEngine, submit: Submit) -> None:
        """Walk the fair value, re-post the maker ladder when due, and send the takers that arrived."""
        cfg = self.cfg
        dt_s = max(now_ns - self._last_ns, 0) / _NS_PER_S
        self._last_ns = now_ns
        if cfg.fair_vol_px_per_s and dt_s:
            self.fair += self._rng.gauss(0.0, cfg.fair_vol_px_per_s * math.sqrt(dt_s))
            self.fair = min(max(self.fair, cfg.fair_band_px), PX_ONE - cfg.fair_band_px)
        if now_ns >= self._next_refresh_ns:
            self._next_refresh_ns = now_ns + cfg.maker_refresh_ms * 1_000_000
            self._refresh(engine, submit)
        while self._next_taker_ns <= now_ns:
            self._next_taker_ns += self._gap_ns()
            self._take(engine, submit)

    def _refresh(self, engine: MatchingEngine, submit: Submit) -> None:
        for cid in self._live:
            if engine.order(FLOW_MAKER, cid) is not None:
                submit(FLOW_MAKER, Cancel(market=self.market, client_id=cid))
        self._live.clear()
        cfg, tick = self.cfg, engine.tick_px
        fair = round(self.fair)
        for i in range(cfg.maker_levels):
            offset = cfg.maker_half_spread_px + i * cfg.maker_step_px
            bid = floor_to_tick(fair - offset, tick)
            ask = ceil_to_tick(fair + offset, tick)
            for px, is_bid in ((bid, True), (ask, False)):
                if tick <= px <= PX_ONE - tick:
                    cid = self._id()
                    report = submit(FLOW_MAKER, _buy(self.market, cid, px, is_bid, cfg.maker_qty, "GTC"))
                    if report.order_id:
                        self._live.append(cid)

    def _take(self, engine: MatchingEngine, submit: Submit) -> None:
        cfg, tick = self.cfg, engine.tick_px
        buy = self._rng.random() < 0.5
        # A whole number of shares between the bounds (at least the minimum).
        lots = self._rng.randint(
            cfg.taker_qty_min // QTY_ONE, max(cfg.taker_qty_max // QTY_ONE, cfg.taker_qty_min // QTY_ONE)
        )
        qty = max(lots * QTY_ONE, cfg.taker_qty_min)
        if buy:
            best = engine.best_ask(Outcome.YES)
            if best is None:
                return
            limit = min(best + cfg.taker_reach_ticks * tick, PX_ONE - tick)
        else:
            best = engine.best_bid(Outcome.YES)
            if best is None:
                return
            limit = max(best - cfg.taker_reach_ticks * tick, tick)
        submit(FLOW_TAKER, _buy(self.market, self._id(), limit, buy, qty, "FAK"))


class ReplayFlow:
    """A recorded market replayed as participants: book levels rest, trades take.

    Every level of the tape (snapshots included) becomes a post-only resting order of ``replay``
    holding the recorded size (changed by cancel and re-post); every trade becomes a FAK order
    reaching the recorded price, which fills whatever rests ahead of it first, the bot's quotes
    included. Levels below the market's minimum size rest at the minimum. Events play at their
    recorded pace divided by ``speed``, starting at ``start_ns``; with ``loop`` the tape starts over.
    """

    def __init__(
        self, tape: MarketTape, market: str, *, seed: int, start_ns: int, speed: float, loop: bool
    ) -> None:
        self.tape = tape
        self.market = market
        self._seed = seed
        self._speed = speed
        self._loop = loop
        self._start_ns = start_ns
        self._t0 = tape.ts[0] if len(tape) else 0
        self._i = 0
        self._seq = 0
        self._levels: dict[tuple[bool, Px], str] = {}

    def _id(self) -> str:
        self._seq += 1
        return flow_order_id(self._seed, f"replay:{self.market}", self._seq)

    def step(self, now_ns: int, engine: MatchingEngine, submit: Submit) -> None:
        """Apply every tape event due by ``now_ns``."""
        tape = self.tape
        n = len(tape)
        while n:
            if self._i >= n:
                if not self._loop:
                    return
                self._i = 0
                self._start_ns = now_ns
            due = self._start_ns + int((tape.ts[self._i] - self._t0) / self._speed)
            if due > now_ns:
                return
            i = self._i
            op, px, qty = tape.op[i], tape.px[i], tape.qty[i]
            self._i += 1
            if op == OP_SPECIAL:
                special = tape.specials.get(i)
                if isinstance(special, BookSnapshot):
                    self._reseed(engine, submit, special)
            elif op in (OP_BID, OP_ASK):
                self._set_level(engine, submit, op == OP_BID, px, qty)
            elif op in (OP_BUY, OP_SELL) and qty > 0:
                # A buyer lifts asks up to px (BUY YES); a seller hits bids down to px (BUY NO at 1 - px).
                submit(REPLAY, _buy(self.market, self._id(), px, op == OP_BUY, qty, "FAK"))

    def _reseed(self, engine: MatchingEngine, submit: Submit, snap: BookSnapshot) -> None:
        # A recorded snapshot replaces every level: drop the ones it lacks, set the ones it has.
        wanted = {(True, px): qty for px, qty in snap.bids} | {(False, px): qty for px, qty in snap.asks}
        for key in [k for k in self._levels if k not in wanted]:
            self._set_level(engine, submit, key[0], key[1], 0)
        for (is_bid, px), qty in wanted.items():
            self._set_level(engine, submit, is_bid, px, qty)

    def _set_level(self, engine: MatchingEngine, submit: Submit, is_bid: bool, px: Px, qty: Qty) -> None:
        old = self._levels.pop((is_bid, px), None)
        if old is not None and engine.order(REPLAY, old) is not None:
            submit(REPLAY, Cancel(market=self.market, client_id=old))
        if qty > 0 and engine.tick_px <= px <= PX_ONE - engine.tick_px:
            cid = self._id()
            # Post-only: a recorded level that would cross (a transiently crossed recording, or the bot's
            # quote) is left out rather than traded; only recorded trades take liquidity.
            place = _buy(self.market, cid, px, is_bid, max(qty, engine.min_qty), "GTC", post_only=True)
            report = submit(REPLAY, place)
            if report.order_id:
                self._levels[(is_bid, px)] = cid
