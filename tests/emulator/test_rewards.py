"""The emulator's liquidity-rewards endpoints through the official client, and their agreement with the
simulator's score (``core.rewards`` / ``sim.rewards``) on the same book.

Time moves on the emulator's ``ManualClock``: a minute advanced is a minute sampled, never a sleep.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction

import httpx
import msgspec
import pytest

pytest.importorskip("polymarket", reason="polymarket-client is not installed")

from eth_account import Account
from polymarket import SecureClient

from core.eventlog import BufferSink
from core.markets import MarketInfo
from core.messages import BookSnapshot, Place
from core.rewards import MINUTES_PER_DAY, order_scoring
from core.units import NS_PER_S, QTY_ONE, Outcome, Side
from emulator import Emulator, ManualClock
from emulator.rewards import day_of
from sim.rewards import RewardAccrual, sample_ts
from sim.rewards import book_scores as sim_book_scores
from tests.emulator.conftest import (
    KEY_A,
    KEY_B,
    V1_MARKET,
    V2_MARKET,
    ids,
    l2_request,
    make_client,
    mixed_scenario,
)
from tests.emulator.sdk_env import local_environment
from venue.exchange import SimExchange

ADDRESS_A = Account.from_key(KEY_A).address
ADDRESS_B = Account.from_key(KEY_B).address
DAILY_USDC6 = 144_000_000  # 144 USDC a day: 0.1 USDC a sample when one maker has it all
MIN_QTY = 20 * QTY_ONE
V_PX = 300  # 3 cents


def rewarded_scenario():
    s = mixed_scenario()
    rewarded = msgspec.structs.replace(
        s.markets[0], rewards_max_spread_px=V_PX, rewards_min_qty=MIN_QTY, rewards_daily_usdc6=DAILY_USDC6
    )
    v2 = msgspec.structs.replace(
        s.markets[1], rewards_max_spread_px=450, rewards_min_qty=MIN_QTY, rewards_daily_usdc6=5_000_000
    )
    account = msgspec.structs.replace(s.account, shares_qty=200 * QTY_ONE)  # shares to sell
    return msgspec.structs.replace(s, markets=(rewarded, v2, s.markets[2]), account=account)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(rewarded_scenario(), port=0, clock=ManualClock()) as e:
        yield e


def _client(e: Emulator, key: str = KEY_A) -> SecureClient:
    wallet = Account.from_key(key).address
    return SecureClient.create(private_key=key, wallet=wallet, environment=local_environment(e.clob_url))


@pytest.fixture
def sdk(emu: Emulator) -> Iterator[SecureClient]:
    client = _client(emu)
    yield client
    client.close()


def _post(sdk: SecureClient, token: str, price: str, size: str, side: str) -> str:
    signed = sdk.create_limit_order(token_id=token, price=price, size=size, side=side, post_only=True)
    (reply,) = sdk.post_orders([signed])
    assert type(reply).__name__ == "AcceptedOrder", reply
    return str(reply.order_id)


def _minutes(e: Emulator, n: int, market: str = V1_MARKET) -> int:
    # Advance ``n`` minutes and step: every sample passed is taken. Returns ``market``'s samples taken.
    cid = ids(e, market)["market"]
    before = e.venue.rewards.samples[cid]
    assert isinstance(e.clock, ManualClock)
    e.clock.advance(n * 60 * NS_PER_S)
    e.venue.step()
    return e.venue.rewards.samples[cid] - before


def test_the_reward_configs_parse_in_the_official_client(emu, sdk):
    v1 = ids(emu, V1_MARKET)["market"]
    current = {r.condition_id.lower(): r for page in sdk.list_current_rewards() for r in page.items}

    assert set(current) == {v1.lower(), ids(emu, V2_MARKET)["market"].lower()}  # the third has none
    r = current[v1.lower()]
    assert (r.rewards_max_spread, r.rewards_min_size, r.total_daily_rate) == (3.0, Decimal(20), Decimal(144))
    assert r.rewards_config[0].rate_per_day == Decimal(144)
    (m,) = [x for page in sdk.list_market_rewards(condition_id=v1) for x in page.items]
    assert m.market_slug == V1_MARKET
    assert [t.asset_id for t in m.tokens] == [
        ids(emu, V1_MARKET)["yes_token"],
        ids(emu, V1_MARKET)["no_token"],
    ]


def test_order_scoring_follows_size_distance_and_the_two_sided_rule(emu, sdk):
    # The book: bids 0.48/0.47, asks 0.52/0.53 (100 shares): adjusted mid 0.50, v = 3 cents.
    yes, no = ids(emu, V1_MARKET)["yes_token"], ids(emu, V1_MARKET)["no_token"]
    near = _post(sdk, yes, "0.49", "30", "BUY")  # 1c off: scores
    small = _post(sdk, yes, "0.49", "10", "BUY")  # below the 20-share minimum
    far = _post(sdk, yes, "0.47", "30", "BUY")  # 3c off: the band's edge scores nothing
    no_bid = _post(sdk, no, "0.49", "25", "BUY")  # a YES ask at 0.51: scores on the other side

    got = sdk.get_orders_scoring(order_ids=[near, small, far, no_bid, "0xunknown"])

    assert got == {near: True, small: False, far: False, no_bid: True, "0xunknown": False}
    assert sdk.get_order_scoring(order_id=near) is True
    # Another account never sees ours scoring.
    other = _client(emu, KEY_B)
    try:
        assert other.get_orders_scoring(order_ids=[near]) == {near: False}
    finally:
        other.close()


def test_emulator_scoring_and_earnings_agree_with_the_simulator_on_the_same_book(emu, sdk):
    """The acceptance check: one book, scored by the emulator (per maker: the seed book and us) and by
    the simulator (``sim.rewards.book_scores``: the displayed levels as one maker, ours added)."""
    m = ids(emu, V1_MARKET)
    yes, no = m["yes_token"], m["no_token"]
    mine = [
        (_post(sdk, yes, "0.49", "40", "BUY"), (Outcome.YES, Side.BUY, 4_900, 40 * QTY_ONE)),
        (_post(sdk, no, "0.5", "30", "BUY"), (Outcome.NO, Side.BUY, 5_000, 30 * QTY_ONE)),
        (_post(sdk, yes, "0.51", "10", "SELL"), (Outcome.YES, Side.SELL, 5_100, 10 * QTY_ONE)),
    ]
    start_ns = emu.clock.now_ns()
    samples = _minutes(emu, 3)
    # The simulator's venue with the same displayed book (the seed's levels) and our same orders.
    info = MarketInfo(
        market=m["market"],
        yes_token=yes,
        no_token=no,
        tick_px=100,
        min_qty=5 * QTY_ONE,
        rewards_max_spread_px=V_PX,
        rewards_min_qty=MIN_QTY,
        rewards_daily_usdc6=DAILY_USDC6,
    )
    ex = SimExchange(info)
    lot = 100 * QTY_ONE
    ex.on_snapshot(
        BookSnapshot(
            market=info.market,
            outcome=Outcome.YES,
            ts_ns=start_ns,
            bids=((4_800, lot), (4_700, lot)),
            asks=((5_200, lot), (5_300, lot)),
            tick_px=100,
            min_qty=5 * QTY_ONE,
        )
    )
    for i, (_, (outcome, side, px, qty)) in enumerate(mine):
        ex.place(
            Place(
                market=info.market,
                client_id=f"c{i}",
                outcome=outcome,
                side=side,
                px=px,
                qty=qty,
                post_only=True,
            ),
            start_ns,
        )
    ours, total, mid2 = sim_book_scores(ex)
    # Our 0.49 bid and our NO bid at 0.50 (a YES ask at 0.50) are the size-cutoff touch; our 10-share
    # ask is below the minimum size. Each minute is sampled at a seeded second within it, so 3 minutes
    # from an arbitrary start pass 2 full minutes' samples and maybe those of the two partial ones.
    assert 2 <= samples <= 4 and 0 < ours < total and mid2 == 4_900 + 5_000
    accrual = RewardAccrual(info, seed=1, first_ts=start_ns, last_ts=emu.clock.now_ns())
    for i in range(samples):  # the simulator's accrual of the same samples on the same book
        accrual.sample(start_ns + i, ex, BufferSink())

    days = sorted({day_of(start_ns), day_of(emu.clock.now_ns())})  # (a run across 00:00 UTC)
    exact = sum(
        (emu.venue.rewards.earned.get((ADDRESS_A.lower(), m["market"], d), Fraction(0)) for d in days),
        Fraction(0),
    )
    assert exact == accrual.exact == samples * ours / total * DAILY_USDC6 / MINUTES_PER_DAY
    reported = [
        e.earnings for d in days for page in sdk.list_user_earnings_for_day(date=d) for e in page.items
    ]
    assert sum(reported, Decimal(0)) * 1_000_000 in (int(exact), int(exact) - 1)  # floored per day
    # Which orders score: the emulator's answer is the simulator's rule on the same orders.
    expected = order_scoring([o for _, o in mine], mid2, info.reward_params())
    got = sdk.get_orders_scoring(order_ids=[oid for oid, _ in mine])
    assert [got[oid] for oid, _ in mine] == list(expected) == [True, True, False]


def test_user_totals_and_market_listing_parse_and_add_up(emu, sdk):
    yes = ids(emu, V1_MARKET)["yes_token"]
    _post(sdk, yes, "0.49", "50", "BUY")
    _post(sdk, yes, "0.51", "50", "SELL")
    _minutes(emu, 2)
    day = day_of(emu.clock.now_ns())

    rows = [e for page in sdk.list_user_earnings_for_day(date=day) for e in page.items]
    (total,) = sdk.get_total_earnings_for_user_for_day(date=day)
    markets = {
        r.condition_id.lower(): r
        for page in sdk.list_user_earnings_and_markets_config(date=day)
        for r in page.items
    }

    assert rows and all(r.maker_address.lower() == ADDRESS_A.lower() for r in rows)
    assert total.earnings == sum((r.earnings for r in rows), Decimal(0)) > 0
    v1 = markets[ids(emu, V1_MARKET)["market"].lower()]
    assert v1.earnings[0].earnings == next(
        r.earnings for r in rows if r.condition_id.lower() == v1.condition_id.lower()
    )
    assert v1.rewards_max_spread == 3.0


def test_bad_requests_are_one_clear_error(emu):
    client = make_client(emu)
    bad_day = l2_request(emu, client, "GET", "/rewards/user", params={"date": "2026-13-01"})
    no_ids = l2_request(emu, client, "POST", "/orders-scoring", body={"ids": []})
    no_id = l2_request(emu, client, "GET", "/order-scoring")

    assert (bad_day.status_code, bad_day.json()) == (
        400,
        {"error": "date must be YYYY-MM-DD, got '2026-13-01'"},
    )
    assert no_ids.status_code == no_id.status_code == 400
    assert httpx.get(f"{emu.clob_url}/rewards/user", params={"date": "2026-12-01"}).status_code == 401
    unknown = httpx.get(f"{emu.clob_url}/rewards/markets/0xnothing").json()
    assert unknown == {"data": [], "next_cursor": "LTE="}


def test_samples_use_the_simulators_seeded_second(emu):
    sch = emu.venue.rewards._schedule[ids(emu, V1_MARKET)["market"]]

    assert sch.next_ts == sample_ts(emu.venue.seed, ids(emu, V1_MARKET)["market"], sch.minute)
    assert Fraction(0) == sum(emu.venue.rewards.earned.values(), Fraction(0))  # nothing rests yet
