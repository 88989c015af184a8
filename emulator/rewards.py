"""The liquidity-rewards program of the emulated venue: order scoring, reward configs, earnings.

Scored with ``core.rewards`` (the simulator's and live tracking's function) on the engine's book as it
stands, under the market's terms (the scenario's ``rewards_max_spread_px``, ``rewards_min_qty``,
``rewards_daily_usdc6``: what Gamma serves as ``rewardsMaxSpread``, ``rewardsMinSize``,
``clobRewards``). See docs/rewards.md and docs/emulator.md.

* **Makers.** The venue knows who rests where: every owner of resting orders in a market's engine is
  one maker (each account, the flow's maker, the seed book), scored by ``maker_q`` of its own orders.
  The adjusted mid (``adjusted_mid2_px``) is the whole book's, every maker's orders included.
* **Scoring** (``GET /order-scoring``, ``POST /orders-scoring``): an order scores when it rests, its
  own ``S > 0`` (size at least the minimum, closer than ``v`` to the adjusted mid) and its maker's
  ``Q_min > 0`` (``core.rewards.order_scoring``: outside the [0.10, 0.90] mid band a one-sided maker's
  orders do not score). Evaluated when asked. Another account's order, or an id the venue does not
  hold as resting, is ``false``.
* **Samples.** Minute ``m`` of a market is sampled at ``sim.rewards.sample_ts(seed, market, m)``, the
  simulator's seeded second, by the venue's stepper at its first step at or after that time (every
  ``step_ms``); a clock moved by minutes takes every sample it passed, on the book as it stands. A
  sample pays each account ``Q_min / (sum of every maker's Q_min) * daily pool / 1440``, kept exact
  and reported floored to the micro-USDC, per account, market and UTC day (the sample's).
* **Listings** in the official client's shapes (``polymarket-client`` 0.14.0,
  ``polymarket/models/clob/rewards.py``): ``/rewards/markets/current`` and ``/rewards/markets/<cid>``
  (the markets with a program), ``/rewards/user``, ``/rewards/user/total`` and ``/rewards/user/markets``
  (the account's earnings of a day). One page each (``next_cursor`` ``LTE=``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any, Final

from core.inventory import OrderLike
from core.rewards import MINUTES_PER_DAY, RewardParams, adjusted_mid2_px, maker_q, order_scoring
from core.units import NS_PER_S, PX_ONE, QTY_ONE, USDC6_ONE, Outcome, Side, format_qty
from emulator.state import END_CURSOR, MarketState, VenueError
from sim.rewards import SAMPLE_PERIOD_NS, sample_ts

__all__ = ["ASSET_ADDRESS", "RewardPools", "check_day", "day_of", "reward_params"]

#: The collateral the pools pay in (pUSD), as Gamma's ``clobRewards[].assetAddress`` names it.
ASSET_ADDRESS: Final = "0xC011a7E12a19f7B1f670d46F03B03f3342E82DFB"
_END_DATE: Final = "2500-12-31"


def reward_params(m: MarketState) -> RewardParams:
    """A market's reward terms (none: ``max_spread_px`` 0)."""
    c = m.cfg
    return RewardParams(
        max_spread_px=c.rewards_max_spread_px, min_qty=c.rewards_min_qty, daily_usdc6=c.rewards_daily_usdc6
    )


def day_of(ts_ns: int) -> str:
    """The UTC day of ``ts_ns`` as ``YYYY-MM-DD``."""
    return datetime.fromtimestamp(ts_ns // NS_PER_S, UTC).date().isoformat()


def _makers(m: MarketState) -> tuple[dict[str, list[OrderLike]], dict[str, list[str]], int]:
    # Every owner's resting orders (and their venue ids), and twice the whole book's adjusted mid.
    orders: dict[str, list[OrderLike]] = {}
    ids: dict[str, list[str]] = {}
    for o in m.engine.open_orders():
        if o.leaves_qty > 0:
            orders.setdefault(o.owner, []).append((o.outcome, o.side, o.px, o.leaves_qty))
            ids.setdefault(o.owner, []).append(o.client_id)
    eng = m.engine
    mid2 = adjusted_mid2_px(
        eng.depth(Outcome.YES, Side.BUY), eng.depth(Outcome.YES, Side.SELL), m.cfg.rewards_min_qty
    )
    return orders, ids, mid2


def _usd(x: int) -> float:
    # A micro-USDC amount as the venue writes money (a JSON number; exact below 2**53 micro-USDC).
    return x / USDC6_ONE


def _shares(qty: int) -> float:
    return float(format_qty(qty))


class _Schedule:
    __slots__ = ("minute", "next_ts", "total_q")

    def __init__(self, seed: int, market: str, start_ns: int) -> None:
        self.minute = start_ns // SAMPLE_PERIOD_NS
        self.next_ts = sample_ts(seed, market, self.minute)
        if self.next_ts < start_ns:  # this minute's second has passed: the first sample is the next's
            self.minute += 1
            self.next_ts = sample_ts(seed, market, self.minute)
        self.total_q = Fraction(0)


class RewardPools:
    """Samples, earnings and the reward listings of the venue's markets (see the module docstring).

    Not locked itself: the venue calls it under its lock.
    """

    def __init__(self, seed: int, markets: Sequence[MarketState], start_ns: int) -> None:
        self.seed = seed
        self._markets = [m for m in markets if reward_params(m).active]
        self._schedule = {m.market: _Schedule(seed, m.market, start_ns) for m in self._markets}
        #: Exact earnings (micro-USDC) per (address lower-cased, condition id, UTC day).
        self.earned: dict[tuple[str, str, str], Fraction] = {}
        #: Samples taken per market (condition id).
        self.samples: dict[str, int] = dict.fromkeys(self._schedule, 0)

    def until(self, now_ns: int, accounts: Iterable[str]) -> None:
        """Take every sample due at or before ``now_ns``; ``accounts``: the owners that are accounts."""
        ours = {a.lower() for a in accounts}
        for m in self._markets:
            sch = self._schedule[m.market]
            while sch.next_ts <= now_ns and m.engine.resolved is None:
                self._sample(m, sch, ours)
                sch.minute += 1
                sch.next_ts = sample_ts(self.seed, m.market, sch.minute)

    def _sample(self, m: MarketState, sch: _Schedule, accounts: set[str]) -> None:
        rp = reward_params(m)
        orders, _, mid2 = _makers(m)
        self.samples[m.market] += 1
        if mid2 <= 0:
            sch.total_q = Fraction(0)
            return
        qs = {owner: maker_q(o, mid2, rp) for owner, o in orders.items()}
        total = sum(qs.values(), Fraction(0))
        sch.total_q = total
        if total <= 0:
            return
        day = day_of(sch.next_ts)
        for owner, q in qs.items():
            if q > 0 and owner.lower() in accounts:
                key = (owner.lower(), m.market, day)
                self.earned[key] = (
                    self.earned.get(key, Fraction(0)) + q / total * rp.daily_usdc6 / MINUTES_PER_DAY
                )

    # --- scoring -------------------------------------------------------------------------------------

    def scoring(
        self, address: str, order_ids: Sequence[str], markets: Iterable[MarketState]
    ) -> dict[str, bool]:
        """``{id: scoring}`` for ``order_ids`` of ``address``; ``markets``: where its ids rest."""
        flags: dict[str, bool] = {}
        for m in markets:
            rp = reward_params(m)
            if not rp.active:
                continue
            orders, ids, mid2 = _makers(m)
            owner = next((o for o in orders if o.lower() == address.lower()), None)
            if owner is None or mid2 <= 0:
                continue
            flags.update(zip(ids[owner], order_scoring(orders[owner], mid2, rp), strict=True))
        return {oid: flags.get(oid, False) for oid in order_ids}

    # --- listings ------------------------------------------------------------------------------------

    def _config(self, m: MarketState, start_ns: int, *, with_id: bool) -> dict[str, Any]:
        rate = _usd(m.cfg.rewards_daily_usdc6)
        cfg: dict[str, Any] = {
            "asset_address": ASSET_ADDRESS,
            "start_date": day_of(start_ns),
            "end_date": _END_DATE,
            "rate_per_day": rate,
            "total_rewards": 0,
        }
        if with_id:
            cfg = {"id": int(m.gamma_id), **cfg}
        return cfg

    def _competitiveness(self, m: MarketState) -> float:
        # The last sample's sum of every maker's Q_min, in shares (the venue does not define it).
        sch = self._schedule.get(m.market)
        return float(sch.total_q / QTY_ONE) if sch is not None else 0.0

    def _tokens(self, m: MarketState) -> list[dict[str, Any]]:
        bid, ask = m.engine.best_bid(Outcome.YES), m.engine.best_ask(Outcome.YES)
        yes = (bid + ask) / 2 / PX_ONE if bid is not None and ask is not None else 0.5
        return [
            {"token_id": m.yes, "outcome": m.cfg.outcomes[0], "price": round(yes, 4)},
            {"token_id": m.no, "outcome": m.cfg.outcomes[1], "price": round(1 - yes, 4)},
        ]

    def current(self) -> dict[str, Any]:
        """``GET /rewards/markets/current``: every market with a program (``CurrentReward``)."""
        data = [
            {
                "condition_id": m.market,
                "rewards_max_spread": m.cfg.rewards_max_spread_px / 100,
                "rewards_min_size": _shares(m.cfg.rewards_min_qty),
                "rewards_config": [self._config(m, m.start_ns, with_id=True)],
                "sponsored_daily_rate": 0,
                "sponsors_count": 0,
                "native_daily_rate": _usd(m.cfg.rewards_daily_usdc6),
                "total_daily_rate": _usd(m.cfg.rewards_daily_usdc6),
            }
            for m in self._markets
        ]
        return {"data": data, "next_cursor": END_CURSOR}

    def market(self, condition_id: str) -> dict[str, Any]:
        """``GET /rewards/markets/<cid>``: that market's program (``MarketReward``), none: an empty page."""
        data = [
            {
                "condition_id": m.market,
                "question": m.cfg.question or m.cfg.slug,
                "market_slug": m.cfg.slug,
                "event_slug": m.cfg.slug,
                "image": "",
                "rewards_max_spread": m.cfg.rewards_max_spread_px / 100,
                "rewards_min_size": _shares(m.cfg.rewards_min_qty),
                "market_competitiveness": self._competitiveness(m),
                "tokens": self._tokens(m),
                "rewards_config": [self._config(m, m.start_ns, with_id=False)],
            }
            for m in self._markets
            if m.market.lower() == condition_id.lower()
        ]
        return {"data": data, "next_cursor": END_CURSOR}

    def _earned(self, address: str, day: str) -> list[tuple[MarketState, int]]:
        key = address.lower()
        return [(m, int(self.earned.get((key, m.market, day), 0))) for m in self._markets]

    def user(self, address: str, day: str) -> dict[str, Any]:
        """``GET /rewards/user?date=``: the account's earnings of ``day`` per market (``UserEarning``)."""
        data = [
            {
                "date": day,
                "condition_id": m.market,
                "asset_address": ASSET_ADDRESS,
                "maker_address": address,
                "earnings": _usd(e),
                "asset_rate": 1,
            }
            for m, e in self._earned(address, day)
            if e > 0
        ]
        return {"data": data, "next_cursor": END_CURSOR}

    def total(self, address: str, day: str) -> list[dict[str, Any]]:
        """``GET /rewards/user/total?date=``: the day's total (``TotalUserEarning``), one row."""
        total = sum(e for _, e in self._earned(address, day))
        return [
            {
                "date": day,
                "asset_address": ASSET_ADDRESS,
                "maker_address": address,
                "earnings": _usd(total),
                "asset_rate": 1,
            }
        ]

    def user_markets(self, address: str, day: str) -> dict[str, Any]:
        """``GET /rewards/user/markets?date=``: every market with a program, with the account's earnings.

        ``earning_percentage``: what the account earned that day as a percent of the market's daily
        pool (the venue does not define it).
        """
        data = []
        for m, e in self._earned(address, day):
            daily = m.cfg.rewards_daily_usdc6
            data.append(
                {
                    "condition_id": m.market,
                    "earning_percentage": 100 * e / daily if daily else 0.0,
                    "earnings": [{"asset_address": ASSET_ADDRESS, "asset_rate": 1, "earnings": _usd(e)}],
                    "event_slug": m.cfg.slug,
                    "image": "",
                    "maker_address": address,
                    "market_competitiveness": self._competitiveness(m),
                    "market_slug": m.cfg.slug,
                    "question": m.cfg.question or m.cfg.slug,
                    "rewards_config": [self._config(m, m.start_ns, with_id=False)],
                    "rewards_max_spread": m.cfg.rewards_max_spread_px / 100,
                    "rewards_min_size": _shares(m.cfg.rewards_min_qty),
                    "tokens": self._tokens(m),
                }
            )
        return {"data": data, "next_cursor": END_CURSOR, "total_count": len(data)}


def check_day(text: str) -> str:
    """A ``date`` query parameter: ``YYYY-MM-DD`` (400 otherwise)."""
    try:
        return datetime.strptime(text, "%Y-%m-%d").date().isoformat()  # noqa: DTZ007 (a date, no time)
    except ValueError:
        raise VenueError(400, f"date must be YYYY-MM-DD, got {text!r}") from None
