"""The venue's public market data: books, prices, ticks, CLOB market listings and Gamma's view."""

from __future__ import annotations

from typing import Any

from core.units import (
    NS_PER_MS,
    NS_PER_S,
    PX_ONE,
    USDC6_ONE,
    USDC10_PER_USDC6,
    Outcome,
    Px,
    Side,
    format_px,
    format_qty,
    int_to_decimal,
)
from emulator.accounts import Accounts
from emulator.gamma import GammaMarket
from emulator.state import (
    SIDE_NAME,
    VenueError,
)
from emulator.wire import (
    book_json,
    clob_market_json,
    last_px_text,
)

__all__ = ["MarketData"]


class MarketData(Accounts):
    """Public reads over the markets (``GET /book``, ``/price``, ``/markets``, Gamma)."""

    def book(self, token_id: str) -> dict[str, Any]:
        """``GET /book``: the token's book, best levels last."""
        with self.lock:
            m, outcome = self._find(token_id)
            return book_json(m, outcome, self.now_ns() // NS_PER_MS)

    def best(self, token_id: str) -> tuple[Px | None, Px | None]:
        """Best bid and best ask of a token."""
        with self.lock:
            m, outcome = self._find(token_id)
            return m.engine.best_bid(outcome), m.engine.best_ask(outcome)

    def midpoint(self, token_id: str) -> str:
        """The mid as a decimal string (5 decimals when it falls between two 1e-4 prices)."""
        bid, ask = self.best(token_id)
        if bid is None or ask is None:
            raise VenueError(404, "No orderbook exists for the requested token id")
        return int_to_decimal((bid + ask) * 5, 5)  # (bid + ask) / 2 in 1e-5 units

    def price(self, token_id: str, side: str) -> str:
        """``GET /price``: BUY gives the best bid, SELL the best ask (the resting side, as the venue does)."""
        bid, ask = self.best(token_id)
        match side.upper():
            case "BUY":
                px = bid
            case "SELL":
                px = ask
            case _:
                raise VenueError(400, "Invalid side")
        if px is None:
            raise VenueError(404, "No orderbook exists for the requested token id")
        return format_px(px)

    def spread(self, token_id: str) -> str:
        """Best ask minus best bid."""
        bid, ask = self.best(token_id)
        if bid is None or ask is None:
            raise VenueError(404, "No orderbook exists for the requested token id")
        return format_px(ask - bid)

    def last_trade_price(self, token_id: str) -> dict[str, str]:
        """``{"price", "side"}`` of the token's last trade (the taker's side on that token)."""
        with self.lock:
            m, outcome = self._find(token_id)
            if m.last_trade is None:
                return {"price": "0.5", "side": ""}
            yes_aggr = m.last_trade[1]
            side = yes_aggr if outcome is Outcome.YES else Side(-yes_aggr)
            return {"price": last_px_text(m, outcome), "side": SIDE_NAME[side]}

    def tick_size(self, token_id: str) -> Px:
        """The token's current tick in Px."""
        with self.lock:
            return self._find(token_id)[0].engine.tick_px

    def token_info(self, token_id: str) -> tuple[str, bool, int]:
        """``(condition_id, neg_risk, fee_rate_ppm)`` of a token."""
        with self.lock:
            m = self._find(token_id)[0]
            return m.market, m.cfg.neg_risk, m.cfg.fee_rate_ppm

    def clob_markets(self) -> list[dict[str, Any]]:
        """Every market as the CLOB's ``GET /markets`` lists it."""
        with self.lock:
            return [clob_market_json(m) for m in self._markets]

    def clob_market(self, condition_id: str) -> dict[str, Any]:
        """One market as ``GET /markets/<condition_id>`` serves it."""
        with self.lock:
            m = self._by_cid.get(condition_id)
            if m is None:
                raise VenueError(404, "market not found")
            return clob_market_json(m)

    def clob_market_info(self, condition_id: str) -> dict[str, Any]:
        """``GET /clob-markets/<condition_id>``: the compact form the V2 client caches."""
        with self.lock:
            m = self._by_cid.get(condition_id)
            if m is None:
                raise VenueError(404, "market not found")
            return {
                "t": [{"t": m.yes, "o": m.cfg.outcomes[0]}, {"t": m.no, "o": m.cfg.outcomes[1]}],
                "mts": float(format_px(m.engine.tick_px)),
                "mos": float(format_qty(m.engine.min_qty)),
                "nr": m.cfg.neg_risk,
                "mbf": 1000 if m.cfg.fee_rate_ppm else 0,
                "tbf": 1000 if m.cfg.fee_rate_ppm else 0,
                "fd": {"r": m.cfg.fee_rate_ppm / 1_000_000, "e": 1, "to": True},
                "rfqe": False,
            }

    def gamma_markets(self) -> list[GammaMarket]:
        """What Gamma says about every market now."""
        with self.lock:
            out = []
            # The markets of one neg-risk event are one Gamma event, under its first market's event id.
            event_of: dict[str, str] = {}
            for m in self._markets:
                if m.neg_risk_market_id:
                    event_of.setdefault(m.neg_risk_market_id, str(int(m.gamma_id) + 100_000))
            for m in self._markets:
                eng = m.engine
                # The resting notional in Usdc10 (px * qty, exact), reported in USDC below.
                liquidity = sum(p * q for p, q in eng.depth(Outcome.YES, Side.BUY))
                liquidity += sum((PX_ONE - p) * q for p, q in eng.depth(Outcome.YES, Side.SELL))
                out.append(
                    GammaMarket(
                        gamma_id=m.gamma_id,
                        event_id=event_of.get(m.neg_risk_market_id, str(int(m.gamma_id) + 100_000)),
                        version=m.cfg.version,
                        slug=m.cfg.slug,
                        question=m.cfg.question or m.cfg.slug,
                        condition_id=m.market,
                        token_ids=(m.yes, m.no),
                        outcomes=m.cfg.outcomes,
                        tick_px=eng.tick_px,
                        min_qty=eng.min_qty,
                        neg_risk=m.cfg.neg_risk,
                        neg_risk_market_id=m.neg_risk_market_id,
                        fee_rate_ppm=m.cfg.fee_rate_ppm,
                        maker_rebate_ppm=m.cfg.maker_rebate_ppm,
                        best_bid_px=eng.best_bid(Outcome.YES),
                        best_ask_px=eng.best_ask(Outcome.YES),
                        last_trade_px=m.last_trade[0] if m.last_trade else None,
                        liquidity_usdc=m.cfg.liquidity_usdc or liquidity / (USDC6_ONE * USDC10_PER_USDC6),
                        volume_24h=m.cfg.volume_24h,
                        start_ns=m.start_ns,
                        end_ns=m.start_ns + int(m.cfg.end_in_days * 86_400) * NS_PER_S,
                        tags=m.cfg.tags,
                        category=m.cfg.category,
                        rewards_min_qty=m.cfg.rewards_min_qty,
                        rewards_max_spread_px=m.cfg.rewards_max_spread_px,
                        rewards_daily_usdc6=m.cfg.rewards_daily_usdc6,
                        closed=eng.resolved is not None,
                    )
                )
            return out
