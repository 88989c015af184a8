"""Prometheus metrics of a running bot (``prometheus-client``), on a loopback port of their own.

``run-market-maker`` serves them at ``http://127.0.0.1:<ops.metrics_port>/metrics`` (0 picks a free
port, written to the run's ``control.json``; null turns them off), from the client library's own
server thread. A scrape reads the risk manager's view (each market's latest sample: position,
orders, counters) and the tick-to-quote histogram: it never sends a message to a market actor, so
scraping costs the trading thread nothing. No token: it is read-only and bound to 127.0.0.1.

Series (``market`` is the condition id; money in USDC, sizes in shares, times in seconds):

* ``polymm_position_shares{market,outcome}``, ``polymm_net_position_shares{market}``
* ``polymm_pnl_usdc{market,part}``: ``day``, ``day_realized``, ``day_unrealized`` (since 00:00 UTC,
  marked at the mid); ``polymm_book_pnl_usdc{part}``: the same for the book plus ``peak`` and
  ``drawdown``; ``polymm_loss_stop_usdc{scope}``: the daily loss stops (``book``, ``market``)
* ``polymm_open_orders{market}``, ``polymm_quote_uptime_ratio{market}`` (time quoting since start)
* ``polymm_decisions_total{market}``, ``polymm_orders_total{market,kind}`` (``place``, ``cancel``),
  ``polymm_fills_total{market}``, ``polymm_rejects_total{market}`` (post-only crosses excepted),
  ``polymm_venue_errors_total`` (live: retries after 5xx or no reply, 429s)
* ``polymm_tick_to_quote_seconds``: a histogram, from handling a feed frame's events to handing over
  the orders they caused
* ``polymm_heartbeat_age_seconds`` (live), ``polymm_feed_age_seconds{market}``
* ``polymm_risk_state{market}`` and ``polymm_book_risk_state``: 0 active, 1 reduce_only, 2 paused,
  3 halted; ``polymm_position_drift{market}``: 1 while the ledger holds the market for drift
* ``polymm_market_events_total``: market events handed to the market actors
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from actors.market import LatencyHistogram
from actors.risk import RiskView, state_of
from core.units import NS_PER_S, QTY_ONE, USDC6_ONE

log = logging.getLogger(__name__)


def _usdc(v: int | None) -> float:
    return 0.0 if v is None else v / USDC6_ONE


class EngineCollector(Collector):
    """Builds every series at scrape time from the risk view and the engine's counters."""

    def __init__(
        self,
        risk_view: Callable[[], RiskView],
        latency: LatencyHistogram,
        *,
        events_in: Callable[[], int] = lambda: 0,
        venue_errors: Callable[[], int | None] = lambda: None,
        rewards: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self.risk_view = risk_view
        self.latency = latency
        self.events_in = events_in
        self.venue_errors = venue_errors
        self.rewards = rewards

    def collect(self) -> Iterator[Any]:
        """Every series now (``prometheus_client`` calls this on each scrape)."""
        view = self.risk_view()
        pos = GaugeMetricFamily("polymm_position_shares", "Shares held", labels=["market", "outcome"])
        net = GaugeMetricFamily(
            "polymm_net_position_shares", "Net YES position (NO counts short)", labels=["market"]
        )
        pnl = GaugeMetricFamily(
            "polymm_pnl_usdc", "PnL since 00:00 UTC, marked at the mid", labels=["market", "part"]
        )
        orders = GaugeMetricFamily("polymm_open_orders", "Our open orders", labels=["market"])
        uptime = GaugeMetricFamily(
            "polymm_quote_uptime_ratio", "Fraction of the time quoting since start", labels=["market"]
        )
        decisions = CounterMetricFamily("polymm_decisions", "Quote decisions made", labels=["market"])
        sent = CounterMetricFamily(
            "polymm_orders", "Orders placed and cancels sent", labels=["market", "kind"]
        )
        fills = CounterMetricFamily("polymm_fills", "Fills of our orders", labels=["market"])
        rejects = CounterMetricFamily(
            "polymm_rejects", "Orders refused (post-only crosses excepted)", labels=["market"]
        )
        feed = GaugeMetricFamily("polymm_feed_age_seconds", "Age of the market's data", labels=["market"])
        state = GaugeMetricFamily(
            "polymm_risk_state", "0 active, 1 reduce_only, 2 paused, 3 halted", labels=["market"]
        )
        drift = GaugeMetricFamily(
            "polymm_position_drift", "1 while the market is held for position drift", labels=["market"]
        )
        for m in view.markets:
            s = m.sample
            name = [m.market]
            state.add_metric(name, int(state_of(m.state)))
            pnl.add_metric([m.market, "day"], _usdc(m.day_pnl_usdc6))
            pnl.add_metric([m.market, "day_realized"], _usdc(m.day_realized_usdc6))
            pnl.add_metric([m.market, "day_unrealized"], _usdc(m.day_unrealized_usdc6))
            uptime.add_metric(name, m.quote_uptime)
            if m.feed_age_ns is not None:
                feed.add_metric(name, m.feed_age_ns / NS_PER_S)
            if s is None:
                continue
            pos.add_metric([m.market, "yes"], s.inv.yes_qty / QTY_ONE)
            pos.add_metric([m.market, "no"], s.inv.no_qty / QTY_ONE)
            net.add_metric(name, (s.inv.yes_qty - s.inv.no_qty) / QTY_ONE)
            orders.add_metric(name, s.open_orders)
            decisions.add_metric(name, s.decisions)
            sent.add_metric([m.market, "place"], s.places)
            sent.add_metric([m.market, "cancel"], s.cancels)
            fills.add_metric(name, s.fills)
            rejects.add_metric(name, s.rejects)
            drift.add_metric(name, 1 if s.drift else 0)
        yield from (pos, net, pnl, orders, uptime, decisions, sent, fills, rejects, feed, state, drift)

        book = GaugeMetricFamily("polymm_book_pnl_usdc", "The book's PnL since 00:00 UTC", labels=["part"])
        book.add_metric(["day"], _usdc(view.day_pnl_usdc6))
        book.add_metric(["day_realized"], _usdc(view.day_realized_usdc6))
        book.add_metric(["day_unrealized"], _usdc(view.day_unrealized_usdc6))
        book.add_metric(["peak"], _usdc(view.peak_pnl_usdc6))
        book.add_metric(["drawdown"], _usdc(view.drawdown_usdc6))
        yield book
        stops = GaugeMetricFamily("polymm_loss_stop_usdc", "Daily loss stops", labels=["scope"])
        stops.add_metric(["book"], _usdc(view.daily_loss_stop_usdc6))
        stops.add_metric(["market"], _usdc(view.market_daily_loss_stop_usdc6))
        yield stops
        yield GaugeMetricFamily(
            "polymm_book_risk_state",
            "0 active, 1 reduce_only, 2 paused, 3 halted",
            value=int(state_of(view.book_state)),
        )
        if view.heartbeat_age_ns is not None:
            yield GaugeMetricFamily(
                "polymm_heartbeat_age_seconds",
                "Age of the venue's last acknowledged heartbeat",
                value=view.heartbeat_age_ns / NS_PER_S,
            )
        venue = self.venue_errors()
        if venue is not None:
            yield CounterMetricFamily(
                "polymm_venue_errors", "Venue errors tied to no market (5xx, no reply, 429)", value=venue
            )
        yield CounterMetricFamily(
            "polymm_market_events", "Market events handed to the actors", value=self.events_in()
        )
        if self.rewards is not None:
            yield from self._rewards(self.rewards())
        yield self._latency()

    @staticmethod
    def _rewards(tracked: Mapping[str, Any]) -> Iterator[Any]:
        # ``app.rewards.MarketRewards`` per market: the latest round of reward tracking.
        orders = GaugeMetricFamily(
            "polymm_reward_orders", "Our resting orders in a rewarded market", labels=["market", "scoring"]
        )
        ratio = GaugeMetricFamily(
            "polymm_reward_scoring_ratio",
            "Fraction of our resting orders that score",
            labels=["market", "by"],
        )
        est = GaugeMetricFamily(
            "polymm_reward_estimate_usdc_per_day",
            "Our share of the pool against the displayed book, times the daily pool",
            labels=["market"],
        )
        earned = GaugeMetricFamily(
            "polymm_reward_earned_today_usdc",
            "What the venue reports we earned today (UTC)",
            labels=["market"],
        )
        for market, r in sorted(tracked.items()):
            orders.add_metric([market, "yes"], r.scoring_orders)
            orders.add_metric([market, "no"], r.orders - r.scoring_orders)
            ratio.add_metric([market, "count"], r.scoring_orders / r.orders if r.orders else 0.0)
            ratio.add_metric([market, "size"], r.scoring_qty / r.qty if r.qty else 0.0)
            est.add_metric([market], r.est_daily_usdc6 / USDC6_ONE)
            if r.earned_today_usdc6 is not None:
                earned.add_metric([market], r.earned_today_usdc6 / USDC6_ONE)
        yield from (orders, ratio, est, earned)

    def _latency(self) -> HistogramMetricFamily:
        h = self.latency
        counts = list(h.counts)
        buckets = []
        acc = 0
        for bound, n in zip(h.BOUNDS_NS, counts, strict=False):
            acc += n
            buckets.append((repr(bound / NS_PER_S), acc))
        acc += counts[-1]
        buckets.append(("+Inf", acc))
        return HistogramMetricFamily(
            "polymm_tick_to_quote_seconds",
            "From handling a feed frame's events to handing over the orders they caused",
            buckets=buckets,
            sum_value=h.sum_ns / NS_PER_S,
        )


class MetricsServer:
    """``/metrics`` on 127.0.0.1 (``port`` 0: a free one), served by prometheus-client's thread."""

    def __init__(self, collector: EngineCollector, port: int) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self.port = port
        self._server: Any = None
        self.url = ""

    def start(self) -> str:
        """Listen; returns the metrics URL."""
        server, _thread = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_port}/metrics"
        return self.url

    def stop(self) -> None:
        """Stop serving."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
