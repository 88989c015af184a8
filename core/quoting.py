"""The functional core: ``decide(book, inventory, signals, params, now) -> Decision``.

Pure: no I/O, clock, randomness or logging; time comes in as ``now_ns``. Every knob comes from
``QuoteParams`` (compiled once from the YAML ``Config`` by ``quote_params``). Quotes are expressed on
the YES book; ``orders`` says how each quote is sent (a YES ask may go out as a BUY NO at 1 - p).

Pipeline: risk gate (``core.risk``: paused or halted quotes nothing) → fair price → inventory skew →
half-spread (+ volatility widening, + the fast-move add-on) → ladder (bids floored, asks ceiled to
the tick) → maker-only clamp (and optional join/improve) → sizes (min size, flow shrink, reduce-only
room) → exposure trim (per-market and global caps, resting orders included) → YES/NO routing.
"""

from __future__ import annotations

from math import ceil, floor

import msgspec

from core.book import BookView
from core.config import Config
from core.estimators import FlowState, VolParams, VolState, flow_imbalance_permille
from core.inventory import Inventory, OrderLike, inventory_losses_usdc10, worst_case_losses_usdc10
from core.rewards import NO_REWARDS, RewardParams
from core.risk import ACTIVE_GATE, STATE_NAMES, RiskGate, TradingState
from core.structs import Decision, DesiredOrder, NoQuoteReason, Quote, QuoteParams, Reasons
from core.units import (
    NS_PER_MS,
    ORDER_QTY_STEP,
    PX_ONE,
    QTY_ONE,
    USDC6_ONE,
    USDC10_PER_USDC6,
    Outcome,
    Px,
    Qty,
    Side,
    Usdc6,
    format_px,
    format_qty,
)

_YES, _NO, _BUY, _SELL = Outcome.YES, Outcome.NO, Side.BUY, Side.SELL
_REDUCE_ONLY, _PAUSED, _HALTED = TradingState.REDUCE_ONLY, TradingState.PAUSED, TradingState.HALTED


def _shares(value: float) -> Qty:
    return round(value * QTY_ONE)


def _usdc6(value: float) -> Usdc6:
    return round(value * USDC6_ONE)


def quote_params(cfg: Config) -> QuoteParams:
    """Compile a validated ``Config`` into integer ``QuoteParams`` (exact: excess decimals are refused)."""
    q, inv = cfg.quoting, cfg.inventory
    sizes_qty: tuple[Qty, ...] | None = None
    if q.level_sizes_shares is not None:
        sizes_qty = tuple(_shares(s) for s in q.level_sizes_shares)
    elif q.base_size_shares is not None:
        base, step = _shares(q.base_size_shares), _shares(q.size_step_shares)
        sizes_qty = tuple(base + i * step for i in range(q.levels))
    sizes_usdc6 = tuple(_usdc6(s) for s in q.level_sizes_usdc) if q.level_sizes_usdc is not None else None
    return QuoteParams(
        fair_microprice=q.fair_price == "microprice",
        max_book_age_ns=q.max_book_age_ms * NS_PER_MS,
        max_book_spread_px=q.max_book_spread_px or 0,
        levels=q.levels,
        half_spread_px=q.half_spread_px,
        level_spacing_px=q.level_spacing_px,
        level_sizes_qty=sizes_qty,
        level_sizes_usdc6=sizes_usdc6,
        skew_px=q.skew_px,
        inventory_limit_qty=_shares(inv.inventory_limit_shares),
        improve_best_ticks=-1 if q.improve_best_ticks is None else q.improve_best_ticks,
        sell_yes_via_buy_no=q.sell_yes_via_buy_no,
        buy_yes_via_sell_no=q.buy_yes_via_sell_no,
        widen_threshold_px=q.volatility.widen_threshold_px,
        widen_per_px=q.volatility.widen_per_px,
        vol=VolParams(
            halflife_s=q.volatility.halflife_s,
            pull_threshold_px=q.volatility.pull_threshold_px,
            resume_threshold_px=q.volatility.resume_threshold_px,
        ),
        flow_halflife_s=q.flow.halflife_s,
        flow_threshold_permille=round(q.flow.one_sided_threshold * 1000),
        flow_shrink=q.flow.shrink_factor,
        flow_min_qty=_shares(q.flow.min_flow_shares),
        per_market_cap_usdc6=_usdc6(inv.per_market_ev_cap),
        maker_only=inv.maker_only,
        requote_px_tolerance_ticks=q.requote_px_tolerance_ticks,
        requote_qty_tolerance_pct=q.requote_qty_tolerance_pct,
        min_requote_ns=q.min_requote_ms * NS_PER_MS,
        vol_sample_ns=q.volatility.sample_ms * NS_PER_MS,
        rewards_enabled=cfg.rewards.enabled,
        rewards_band_pct=cfg.rewards.band_pct,
        merge_enabled=cfg.merge.enabled,
        merge_min_pairs_qty=_shares(cfg.merge.min_pairs_shares),
    )


def requote_due(now_ns: int, last_ns: int, min_interval_ns: int, urgent: bool) -> bool:
    """Whether a changed input may be acted on now: at most one requote per interval unless urgent.

    Urgent inputs (a new book epoch, the book moving through our quotes, losing a side or crossing)
    are never delayed; the rest (fills included: the caps already counted them) wait for the
    interval, so requotes stay within venue rate limits.
    """
    return urgent or now_ns - last_ns >= min_interval_ns


def flow_size_pcts(flow: FlowState, now_ns: int, p: QuoteParams) -> tuple[int, int, int]:
    """Flow imbalance (permille) and the size multipliers (percent) of the bid and the ask.

    Above the one-sided threshold the side being hit shrinks linearly with the excess imbalance,
    reaching ``1 - flow_shrink`` of its size at fully one-sided flow (``flow_size_pcts_at``).
    """
    flow_pm = flow_imbalance_permille(flow, now_ns, p.flow_halflife_s, p.flow_min_qty)
    if abs(flow_pm) < p.flow_threshold_permille:
        return flow_pm, 100, 100
    bid_pct, ask_pct = flow_size_pcts_at(flow_pm, p)
    return flow_pm, bid_pct, ask_pct


def flow_size_pcts_at(flow_pm: int, p: QuoteParams) -> tuple[int, int]:
    """The size multipliers (percent) of the bid and the ask at a flow imbalance of ``flow_pm``."""
    thr = p.flow_threshold_permille
    if abs(flow_pm) < thr:
        return 100, 100
    excess = (abs(flow_pm) - thr) / (1000 - thr) if thr < 1000 else 1.0
    pct = max(0, int(100 * (1 - p.flow_shrink * excess)))
    if flow_pm > 0:
        return 100, pct  # buyers lift our asks
    return pct, 100  # sellers hit our bids


def _held(net: Qty) -> Reasons | None:
    # A refusal says what the market holds too: the decision log shows the inventory whatever it decided.
    return Reasons(inventory_qty=net) if net else None


def _no_quote(
    reason: NoQuoteReason, detail: str, reasons: Reasons | None = None, risk: RiskGate = ACTIVE_GATE
) -> Decision:
    r = reasons if reasons is not None else Reasons()
    r = msgspec.structs.replace(r, pulled=detail) if risk is ACTIVE_GATE else _with_risk(r, risk, detail)
    return Decision(quote=False, no_quote=reason, reasons=r)


def _with_risk(r: Reasons, risk: RiskGate, pulled: str | None = None) -> Reasons:
    # The gate's state and rule in the reasons (only when a rule restricts or widens: ACTIVE_GATE
    # leaves the defaults, so the common path allocates nothing more).
    return msgspec.structs.replace(
        r,
        pulled=r.pulled if pulled is None else pulled,
        risk_state=STATE_NAMES[risk.state],
        risk_rule=risk.rule,
        risk_widen_px=risk.widen_px,
    )


def decide(
    view: BookView,
    inv: Inventory,
    vol: VolState,
    flow: FlowState,
    p: QuoteParams,
    now_ns: int,
    *,
    global_room_usdc6: Usdc6 | None = None,
    inflight: tuple[OrderLike, ...] = (),
    risk: RiskGate = ACTIVE_GATE,
    rewards: RewardParams = NO_REWARDS,
    reward_mid2_px: int = 0,
) -> Decision:
    """Decide the quotes for one market.

    Args:
        view: Top of the YES book (``tick_px`` is the live tick, ``min_qty`` the market minimum).
        inv: Our inventory in this market.
        vol: Volatility estimate (its ``pulled`` flag carries the hysteresis regime).
        flow: Signed trade-flow estimate.
        p: Compiled quoting parameters.
        now_ns: Current time (the caller's clock; simulated or live).
        global_room_usdc6: What the global exposure budget still allows this market (None: no limit).
        inflight: Our orders whose cancel is in flight: they can still fill, so they count for the caps.
        risk: The market's trading state from ``core.risk`` and the fast-move add-on to the
            half-spread. REDUCE_ONLY quotes only the side that lowers the net position (long: asks;
            short: bids; flat: nothing), in all (with the orders in flight) no more than the
            position; PAUSED and HALTED quote nothing.
        rewards: The market's liquidity-rewards terms; used only with ``p.rewards_enabled``.
        reward_mid2_px: Twice the size-cutoff-adjusted mid (``core.rewards.adjusted_mid2_px``);
            0: the touch of ``view``.

    Returns:
        A ``Decision`` with the ladder, the orders to rest and every reason that went into it.
    """
    tick = view.tick_px
    net = inv.yes_qty - inv.no_qty
    # --- 0. the risk gate: paused or halted quotes nothing; reduce-only has nothing to do flat ----
    state = risk.state
    if state:
        if state >= _PAUSED:
            return _no_quote(
                "risk_halted" if state is _HALTED else "risk_paused", risk.detail, _held(net), risk
            )
        if inv.yes_qty == inv.no_qty:
            return _no_quote("risk_reduce_only", f"{risk.detail}; flat: nothing to reduce", _held(net), risk)
    # --- 1. fair price, or a reasoned refusal (never an invented price) ---------------------------
    if view.bid_qty <= 0 and view.ask_qty <= 0:
        return _no_quote("empty_book", "no bids and no asks", _held(net), risk)
    if view.bid_qty <= 0 or view.ask_qty <= 0:
        return _no_quote("one_sided_book", "no bids" if view.bid_qty <= 0 else "no asks", _held(net), risk)
    best_bid, best_ask = view.bid_px, view.ask_px
    if best_bid >= best_ask:
        return _no_quote(
            "crossed_book",
            f"best bid {format_px(best_bid)} >= best ask {format_px(best_ask)}",
            _held(net),
            risk,
        )
    if p.max_book_spread_px and best_ask - best_bid > p.max_book_spread_px:
        return _no_quote(
            "wide_book",
            f"spread {format_px(best_ask - best_bid)} ({format_px(best_bid)}/{format_px(best_ask)}) is wider "
            f"than max_book_spread {format_px(p.max_book_spread_px)}",
            _held(net),
            risk,
        )
    if p.max_book_age_ns and now_ns - view.ts_ns > p.max_book_age_ns:
        return _no_quote(
            "stale_book", f"book is {(now_ns - view.ts_ns) // NS_PER_MS} ms old", _held(net), risk
        )
    if vol.pulled:
        return _no_quote(
            "volatility_pull",
            f"vol {vol.vol_px} px above pull threshold {p.vol.pull_threshold_px} (resume below "
            f"{p.vol.resume_threshold_px})",
            Reasons(vol_px=vol.vol_px, inventory_qty=net),
            risk,
        )
    if p.fair_microprice:
        bq, aq = view.bid_qty, view.ask_qty
        fair = (best_bid * aq + best_ask * bq) / (bq + aq)
        fair_source = "microprice"
    else:
        fair = (best_bid + best_ask) / 2
        fair_source = "mid"

    # --- 2. inventory skew: long inventory moves every quote down ---------------------------------
    skew = p.skew_px * net / p.inventory_limit_qty if net else 0.0
    skewed = fair - skew
    if skewed < tick:
        skewed = float(tick)
    elif skewed > PX_ONE - tick:
        skewed = float(PX_ONE - tick)

    # --- 3. half-spread, widened in proportion to volatility above the threshold, and on a fast move
    widen = (
        int((vol.vol_px - p.widen_threshold_px) * p.widen_per_px) if vol.vol_px > p.widen_threshold_px else 0
    )
    half = p.half_spread_px + widen + risk.widen_px

    # --- 4. ladder on the tick grid; bids floor, asks ceil; spacing at least one tick -------------
    spacing = p.level_spacing_px if p.level_spacing_px > tick else tick
    top_bid = floor((skewed - half) / tick) * tick
    top_ask = ceil((skewed + half) / tick) * tick
    if top_bid >= top_ask:
        top_bid = top_ask - tick
    clamped = 0
    improved = 0
    if p.maker_only:
        if top_bid >= best_ask:
            top_bid = best_ask - tick
            clamped += 1
        if top_ask <= best_bid:
            top_ask = best_bid + tick
            clamped += 1
    if p.improve_best_ticks >= 0:
        # Join or step ahead of the touch, but never to or past our own (skewed) fair price.
        below_fair = ceil(skewed / tick) * tick - tick
        above_fair = floor(skewed / tick) * tick + tick
        want_bid = min(best_bid + p.improve_best_ticks * tick, best_ask - tick, below_fair)
        if want_bid > top_bid:
            top_bid = want_bid
            improved += 1
        want_ask = max(best_ask - p.improve_best_ticks * tick, best_bid + tick, above_fair)
        if want_ask < top_ask:
            top_ask = want_ask
            improved += 1

    # --- 4b. rewards: hold the best level of each side inside the reward band ------------------------
    # Moves a side's ladder toward the adjusted mid when its best level scores nothing, but never past
    # the maker-only clamp or our own (skewed) fair price; sizes are raised in the loop below, before
    # the flow shrink, the reduce-only room and the caps, which all still apply.
    notes: list[str] = []
    rw_bid_qty = rw_ask_qty = 0  # the reward minimum for level 0 of a side inside the band; 0: none
    if p.rewards_enabled and rewards.max_spread_px > 0:
        mid2 = reward_mid2_px if reward_mid2_px > 0 else best_bid + best_ask
        v2 = 2 * rewards.max_spread_px
        reach = v2 * p.rewards_band_pct  # the target distance, times 200
        rmin = rewards.min_qty + (-rewards.min_qty) % ORDER_QTY_STEP
        # A level off the price range (below one tick, above 1 - tick) is dropped later: moved too.
        if 2 * top_bid <= mid2 - v2 or top_bid < tick:
            limit = ceil(skewed / tick) * tick - tick
            if p.maker_only and limit >= best_ask:
                limit = best_ask - tick
            new = min(-((reach - 100 * mid2) // (200 * tick)) * tick, limit)
            if new > top_bid and 2 * new > mid2 - v2 and new >= tick:
                notes.append(
                    f"bids moved {format_px(top_bid)} -> {format_px(new)} into the reward band (rewards)"
                )
                top_bid = new
            else:
                notes.append(f"bid {format_px(top_bid)}: outside the reward band, cannot move in (rewards)")
        if 2 * top_bid > mid2 - v2 and top_bid >= tick:
            rw_bid_qty = rmin
        if 2 * top_ask >= mid2 + v2 or top_ask > PX_ONE - tick:
            limit = floor(skewed / tick) * tick + tick
            if p.maker_only and limit <= best_bid:
                limit = best_bid + tick
            new = max((100 * mid2 + reach) // (200 * tick) * tick, limit)
            if new < top_ask and 2 * new < mid2 + v2 and new <= PX_ONE - tick:
                notes.append(
                    f"asks moved {format_px(top_ask)} -> {format_px(new)} into the reward band (rewards)"
                )
                top_ask = new
            else:
                notes.append(f"ask {format_px(top_ask)}: outside the reward band, cannot move in (rewards)")
        if 2 * top_ask < mid2 + v2 and top_ask <= PX_ONE - tick:
            rw_ask_qty = rmin

    # --- 5-7. per side, best level first: size (min size, flow shrink), exposure cap, YES/NO route ---
    # Bids only add loss if NO wins and asks only if YES wins, so each side is trimmed for its own
    # exposure: deepest levels go first and a side is never emptied merely by list order.
    if flow.buy_qty or flow.sell_qty:
        flow_pm, bid_pct, ask_pct = flow_size_pcts(flow, now_ns, p)
    else:
        flow_pm, bid_pct, ask_pct = 0, 100, 100
    min_qty = view.min_qty if view.min_qty > 0 else ORDER_QTY_STEP
    step = ORDER_QTY_STEP
    hi = PX_ONE - tick
    cap = p.per_market_cap_usdc6
    if global_room_usdc6 is not None and global_room_usdc6 < cap:
        cap = global_room_usdc6 if global_room_usdc6 > 0 else 0
    # The cap bounds every outcome's worst-case loss (core.inventory) at max(cap, the worst case
    # before this ladder): an order is trimmed only where it would raise a loss above that, so an
    # order that lowers the worst case (selling shares we hold, at any price) always goes out.
    # Losses are exact in Usdc10 (px * qty), signed: a gain the inventory locks in is room.
    avail_yes, avail_no = inv.yes_qty, inv.no_qty
    if inflight:
        loss_yes, loss_no = worst_case_losses_usdc10(inv, inflight)
        for o, s, _, q in inflight:
            if s is _SELL:
                if o is _YES:
                    avail_yes -= q
                else:
                    avail_no -= q
    else:  # the common case: nothing in flight, the inventory's own losses
        loss_yes, loss_no = inventory_losses_usdc10(inv)
    bound = max(cap * USDC10_PER_USDC6, loss_yes, loss_no)
    sizes_qty = p.level_sizes_qty
    sizes_usdc6 = p.level_sizes_usdc6
    levels = p.levels
    # Reduce-only: only the side that lowers |net|, and no more than it, counting the orders in
    # flight on that side (they may still fill), so no combination of fills flips the position.
    reduce_only = state is _REDUCE_ONLY
    bid_room = ask_room = 0
    bid_levels = ask_levels = levels
    if reduce_only:
        for o, s, _, q in inflight:
            if (o is _YES) == (s is _BUY):
                bid_room -= q
            else:
                ask_room -= q
        if net > 0:
            ask_room += net
            bid_levels = 0
        else:
            bid_room -= net
            ask_levels = 0
    trims: list[str] = notes
    bids: list[Quote] = []
    asks: list[Quote] = []
    orders: list[DesiredOrder] = []
    via_sell_no = p.buy_yes_via_sell_no
    for i in range(bid_levels):
        # Deeper levels stay on the grid even when the spacing is not a multiple of the tick.
        px = top_bid - i * spacing
        px -= px % tick
        if px < tick:
            break
        if px > hi:
            continue
        q = sizes_qty[i] if sizes_qty is not None else sizes_usdc6[i] * USDC10_PER_USDC6 // px  # type: ignore[index]
        if i == 0 and q < rw_bid_qty:
            trims.append(f"bid {format_px(px)}: {format_qty(q)} -> {format_qty(rw_bid_qty)} shares (rewards)")
            q = rw_bid_qty
        if q < min_qty:  # never silently raised to the market's minimum
            trims.append(
                f"bid {format_px(px)}: {format_qty(q)} shares, below the minimum {format_qty(min_qty)}"
            )
            continue
        if bid_pct != 100:  # (no flow shrink, nearly always: q * 100 // 100 is q)
            q = q * bid_pct // 100
        q -= q % step
        if q < min_qty:
            continue
        if reduce_only and q > bid_room:
            fit = bid_room - bid_room % step
            if fit < min_qty:
                trims.extend(_dropped("bid", top_bid, -spacing, tick, i, levels, "reduce-only"))
                break
            trims.append(f"bid {format_px(px)}: {format_qty(q)} -> {format_qty(fit)} shares (reduce-only)")
            q = fit
        loss = px * q  # Usdc10 it loses if it fills and NO wins (a multi-digit int: multiplied once)
        last = loss_no + loss > bound
        if last:
            fit = (bound - loss_no) // px
            fit -= fit % step
            if fit < min_qty:
                trims.extend(_dropped("bid", top_bid, -spacing, tick, i, levels))
                break
            trims.append(f"bid {format_px(px)}: {format_qty(q)} -> {format_qty(fit)} shares (cap)")
            trims.extend(_dropped("bid", top_bid, -spacing, tick, i + 1, levels))
            q = fit
            loss = px * q
        loss_no += loss
        bid_room -= q
        bids.append(Quote(px, q))
        if via_sell_no and avail_no >= q:
            orders.append(DesiredOrder(_NO, _SELL, PX_ONE - px, q))
            avail_no -= q
        else:
            orders.append(DesiredOrder(_YES, _BUY, px, q))
        if last:
            break
    via_buy_no = p.sell_yes_via_buy_no
    for i in range(ask_levels):
        px = top_ask + i * spacing
        px = -((-px) // tick) * tick
        if px > hi:
            break
        if px < tick:
            continue
        unit = PX_ONE - px  # loss per Qty if this ask fills and YES wins, in Usdc10
        q = sizes_qty[i] if sizes_qty is not None else sizes_usdc6[i] * USDC10_PER_USDC6 // unit  # type: ignore[index]
        if i == 0 and q < rw_ask_qty:
            trims.append(f"ask {format_px(px)}: {format_qty(q)} -> {format_qty(rw_ask_qty)} shares (rewards)")
            q = rw_ask_qty
        if q < min_qty:  # never silently raised to the market's minimum
            trims.append(
                f"ask {format_px(px)}: {format_qty(q)} shares, below the minimum {format_qty(min_qty)}"
            )
            continue
        if ask_pct != 100:  # (no flow shrink, nearly always: q * 100 // 100 is q)
            q = q * ask_pct // 100
        q -= q % step
        if q < min_qty:
            continue
        if reduce_only and q > ask_room:
            fit = ask_room - ask_room % step
            if fit < min_qty:
                trims.extend(_dropped("ask", top_ask, spacing, tick, i, levels, "reduce-only"))
                break
            trims.append(f"ask {format_px(px)}: {format_qty(q)} -> {format_qty(fit)} shares (reduce-only)")
            q = fit
        loss = unit * q  # (as for a bid: what it loses if it fills and YES wins)
        last = loss_yes + loss > bound
        if last:
            fit = (bound - loss_yes) // unit
            fit -= fit % step
            if fit < min_qty:
                trims.extend(_dropped("ask", top_ask, spacing, tick, i, levels))
                break
            trims.append(f"ask {format_px(px)}: {format_qty(q)} -> {format_qty(fit)} shares (cap)")
            trims.extend(_dropped("ask", top_ask, spacing, tick, i + 1, levels))
            q = fit
            loss = unit * q
        if avail_yes >= q:
            orders.append(DesiredOrder(_YES, _SELL, px, q))
            avail_yes -= q
        elif via_buy_no:
            orders.append(DesiredOrder(_NO, _BUY, unit, q))
        else:
            trims.append(f"ask {format_px(px)}: no YES to sell and sell_yes_via_buy_no is off")
            continue
        loss_yes += loss
        ask_room -= q
        asks.append(Quote(px, q))
        if last:
            break

    # Positional, in field order (a test pins it): msgspec takes 17 keywords ~5x slower than 15 or
    # fewer (~0.75 vs ~0.15 us), and this runs on every decision.
    reasons = Reasons(
        fair_source,  # fair_source
        net,  # inventory_qty
        round(skew),  # skew_px
        p.half_spread_px,  # base_half_spread_px
        vol.vol_px,  # vol_px
        widen,  # vol_widen_px
        half,  # half_spread_px
        flow_pm,  # flow_permille
        bid_pct,  # bid_size_pct
        ask_pct,  # ask_size_pct
        clamped,  # maker_clamped
        improved,  # improved
        cap,  # cap_usdc6
        # usdc10_to_usdc6_ceil, inlined: a loss is never understated.
        -((-bound) // USDC10_PER_USDC6),  # bound_usdc6
        -((-loss_yes) // USDC10_PER_USDC6),  # loss_if_yes_usdc6
        -((-loss_no) // USDC10_PER_USDC6),  # loss_if_no_usdc6
        tuple(trims),  # trims
    )
    if risk is not ACTIVE_GATE:
        reasons = _with_risk(reasons, risk)
    if not bids and not asks:
        return Decision(
            quote=False,
            no_quote="risk_reduce_only" if reduce_only else "no_room",
            fair_px=round(fair),
            skewed_mid_px=round(skewed),
            reasons=msgspec.structs.replace(
                reasons,
                pulled=f"{risk.detail}; no reducing level fits the size and exposure limits"
                if reduce_only
                else "no level fits the size and exposure limits",
            ),
        )
    return Decision(
        quote=True,
        fair_px=round(fair),
        skewed_mid_px=round(skewed),
        bids=tuple(bids),
        asks=tuple(asks),
        orders=tuple(orders),
        reasons=reasons,
    )


def _dropped(name: str, top: Px, step: Px, tick: Px, first: int, levels: int, why: str = "cap") -> list[str]:
    # Trim notes for the levels from ``first`` on (rare: only when the cap or the reduce-only room binds).
    out = []
    for i in range(first, levels):
        px = top + i * step
        px = px - px % tick if step < 0 else -((-px) // tick) * tick
        if tick <= px <= PX_ONE - tick:
            out.append(f"{name} {format_px(px)}: dropped ({why})")
    return out
