"""The trading engine's exposure budgets: the global cap, and each neg-risk event's cap among its markets."""

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.market import Status
from app.bootstrap import TradingEngine
from app.configfile import load_config
from core.markets import MarketInfo
from core.units import USDC6_ONE

USDC = USDC6_ONE
# Two neg-risk events (E: 2 markets, F: 3) and one market of its own.
GROUPS = {"e1": "E", "e2": "E", "solo": "", "f1": "F", "f2": "F", "f3": "F"}
MARKETS = [
    MarketInfo(market=m, yes_token=m + "y", no_token=m + "n", neg_risk_market_id=g) for m, g in GROUPS.items()
]


def engine(tmp_path, per_event_ev_cap=None, global_ev_cap=1000.0):
    cfg = load_config("configs/market_maker.yaml")  # 100 USDC per market
    inv = msgspec.structs.replace(
        cfg.inventory, per_event_ev_cap=per_event_ev_cap, global_ev_cap=global_ev_cap
    )
    return TradingEngine(
        msgspec.structs.replace(cfg, inventory=inv),
        MARKETS,
        "dry-run",
        ws_url="ws://127.0.0.1:9",
        clob_url="http://127.0.0.1:9",
        state_dir=tmp_path,
    )


def close(eng):
    eng.close()  # never started: closes the event log
    eng.actor_loop.loop.close()


def naive_rooms(exposures, global_cap, event_cap):
    """Each budget shared on its own (exposure plus an equal share of what is left, or a proportional
    cut when over), a market's room the smaller of its global and its event share."""

    def share(cap, es):
        total = sum(es)
        if total <= cap:
            return [e + (cap - total) // len(es) for e in es]
        return [e * cap // total for e in es]

    names = list(GROUPS)
    rooms = dict(zip(names, share(global_cap, [exposures[m] for m in names]), strict=True))
    for g in {g for g in GROUPS.values() if g}:
        members = [m for m in names if GROUPS[m] == g]
        for m, r in zip(members, share(event_cap, [exposures[m] for m in members]), strict=True):
            rooms[m] = min(rooms[m], r)
    return [rooms[m] for m in names]


@pytest.fixture
def make_engine(tmp_path):
    made = []

    def make(**kwargs):
        made.append(engine(tmp_path, **kwargs))
        return made[-1]

    yield make
    for eng in made:
        close(eng)


def test_before_any_share_each_market_gets_its_slice_of_the_global_and_its_event_cap(make_engine):
    eng = make_engine()  # per_event_ev_cap unset: an event shares the per-market cap, 100 USDC

    rooms = {m: eng._session(m).global_room_usdc6 for m in GROUPS}

    assert rooms == {
        "e1": 50 * USDC,
        "e2": 50 * USDC,
        "solo": 1000 * USDC // 6,
        "f1": 100 * USDC // 3,
        "f2": 100 * USDC // 3,
        "f3": 100 * USDC // 3,
    }


def test_the_event_cap_binds_an_event_and_not_the_market_outside_it(make_engine):
    eng = make_engine(per_event_ev_cap=150.0)
    exposures = {"e1": 80 * USDC, "e2": 40 * USDC, "solo": 90 * USDC, "f1": 70, "f2": 0, "f3": 0}
    statuses = {m: status(m, e) for m, e in exposures.items() if m != "f3"}  # f3 does not answer

    shares = eng.budget_shares(statuses)

    # Event E uses 120 of its 150: each of its markets keeps its exposure plus half of the 30 left.
    assert shares["e1"] == 95 * USDC and shares["e2"] == 55 * USDC
    # The global cap leaves plenty: the lone market is limited by the global share only.
    used = sum(exposures[m] for m in GROUPS if m != "f3") + 100 * USDC  # f3 counts its whole cap
    assert shares["solo"] == 90 * USDC + (1000 * USDC - used) // 6
    assert "f3" not in shares
    assert sum(shares[m] for m in ("e1", "e2")) <= 150 * USDC


def status(market, exposure_usdc6):
    return Status(
        market=market,
        book_valid=True,
        yes_qty=0,
        no_qty=0,
        cash_usdc6=0,
        open_orders=0,
        exposure_usdc6=exposure_usdc6,
        decisions=0,
        fills=0,
        last_quote=True,
        last_bids=(),
        last_asks=(),
        skewed_mid_px=0,
        wakeup_ns=0,
    )


@pytest.fixture(scope="module")
def shared_engine(tmp_path_factory):
    eng = engine(tmp_path_factory.mktemp("budget"), per_event_ev_cap=120.0, global_ev_cap=400.0)
    yield eng
    close(eng)


@given(st.lists(st.integers(0, 200 * USDC), min_size=len(GROUPS), max_size=len(GROUPS)))
def test_property_rooms_match_a_naive_reference_and_add_up_within_every_cap(shared_engine, es):
    exposures = dict(zip(GROUPS, es, strict=True))

    rooms = shared_engine.rooms(es)

    assert rooms == naive_rooms(exposures, 400 * USDC, 120 * USDC)
    assert sum(rooms) <= 400 * USDC
    for g in ("E", "F"):
        assert sum(r for m, r in zip(GROUPS, rooms, strict=True) if GROUPS[m] == g) <= 120 * USDC
