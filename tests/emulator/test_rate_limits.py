"""Per-signer rate limits as the venue runs them, on a clock that moves only when the test says."""

from __future__ import annotations

import pytest

from core.units import NS_PER_MS
from emulator import Emulator, ManualClock
from emulator.ratelimit import TIERS, RateLimiter
from emulator.scenario import RateLimitConfig, TierConfig
from tests.emulator.conftest import QUIET, control, ids, l2_request, make_client, make_scenario, order_body

TINY = TierConfig(orders_per_s=1, order_burst=5, cancels_per_s=2, cancel_burst=4)


def _limited(**overrides: object) -> Emulator:
    limits = RateLimitConfig(
        enabled=True, default_tier="tiny", custom_tiers={"tiny": TINY}, retry_after_s=300, **overrides
    )
    return Emulator(make_scenario(rate_limits=limits), port=0, clock=ManualClock())


def _rl(r) -> tuple[int, str, str, str | None]:
    h = r.headers
    return r.status_code, h["Poly-RateLimit-Remaining"], h["Poly-RateLimit-Tier"], h.get("Retry-After")


def test_orders_pay_per_order_and_a_batch_without_enough_tokens_is_refused_whole():
    with _limited() as emu:
        client = make_client(emu)
        token = ids(emu, QUIET)["yes_token"]
        batch = [order_body(client, token, 0.30 + i / 100, 5) for i in range(6)]

        four = l2_request(emu, client, "POST", "/orders", batch[:4])
        two = l2_request(emu, client, "POST", "/orders", batch[4:6])
        one = l2_request(emu, client, "POST", "/order", batch[4])
        none_left = l2_request(emu, client, "POST", "/order", batch[5])
        control(emu, "POST", "/emulator/clock", {"advance_ms": 1_000})  # 1 order/s: one token back
        refilled = l2_request(emu, client, "POST", "/order", batch[5])

        assert _rl(four) == (200, "1", "tiny", None)
        assert [x["success"] for x in four.json()] == [True] * 4
        assert _rl(two) == (429, "1", "tiny", "300")  # refused whole: no token taken, no order placed
        assert "rate limit" in two.json()["error"]
        assert _rl(one) == (200, "0", "tiny", None)
        assert _rl(none_left)[0] == 429
        assert _rl(refilled) == (200, "0", "tiny", None)
        assert len(client.get_open_orders()) == 6
        reset_s = float(refilled.headers["Poly-RateLimit-Reset"])
        assert reset_s == pytest.approx(emu.clock.now_ns() / 1e9 + 5, abs=1e-3)  # full again in 5 s


def test_cancels_cost_one_per_order_and_cancel_all_one_plus_what_it_cancels():
    with _limited() as emu:
        client = make_client(emu)
        token = ids(emu, QUIET)["yes_token"]
        placed = [
            x["orderID"]
            for x in l2_request(
                emu,
                client,
                "POST",
                "/orders",
                [order_body(client, token, 0.30 + i / 100, 5) for i in range(5)],
            ).json()
        ]

        too_many = l2_request(emu, client, "DELETE", "/orders", placed)  # 5 > burst 4: never passes
        three = l2_request(emu, client, "DELETE", "/orders", placed[:3])
        all_refused = l2_request(emu, client, "DELETE", "/cancel-all")  # 1 + 2 open > 1 left
        control(emu, "POST", "/emulator/clock", {"advance_ms": 1_500})  # 2 cancels/s: 1 + 3 = 4
        all_ok = l2_request(emu, client, "DELETE", "/cancel-all")
        control(emu, "POST", "/emulator/clock", {"advance_ms": 10_000})
        never = l2_request(emu, client, "DELETE", "/orders", placed)

        assert _rl(too_many) == (429, "4", "tiny", "300")
        assert _rl(three) == (200, "1", "tiny", None)
        assert three.json()["canceled"] == placed[:3]
        assert _rl(all_refused)[0] == 429
        assert _rl(all_ok) == (200, "1", "tiny", None)
        assert sorted(all_ok.json()["canceled"]) == sorted(placed[3:])
        assert _rl(never)[0] == 429  # a request costing more than the burst can never succeed
        assert client.get_open_orders() == []


def test_tier_per_account_warn_mode_and_switching_off_at_run_time():
    with _limited() as emu:
        client = make_client(emu)
        token = ids(emu, QUIET)["yes_token"]
        me = client.get_address()

        control(emu, "POST", "/emulator/rate-limits", {"accounts": {me: "gold"}})
        gold = l2_request(emu, client, "POST", "/order", order_body(client, token, 0.30, 5))
        control(emu, "POST", "/emulator/rate-limits", {"accounts": {me: "tiny"}, "mode": "warn"})
        batch = [order_body(client, token, 0.31 + i / 100, 5) for i in range(6)]
        warned = l2_request(emu, client, "POST", "/orders", batch)  # 6 > 5: served, but marked
        control(emu, "POST", "/emulator/rate-limits", {"enabled": False})
        off = l2_request(emu, client, "POST", "/order", order_body(client, token, 0.40, 5))
        bad = l2_request(emu, client, "POST", "/order", order_body(client, token, 0.41, 5))
        unknown = control_status(emu, {"default_tier": "platinum"})

        assert _rl(gold) == (200, "599", "gold", None)
        assert warned.status_code == 200
        assert warned.headers["Poly-RateLimit-Warning"] == "true"
        assert "Poly-RateLimit-Warning" not in gold.headers
        assert "Poly-RateLimit-Tier" not in off.headers and off.status_code == bad.status_code == 200
        assert unknown == 400


def test_a_drained_bucket_answers_the_next_order_with_a_long_retry_after():
    # What the acceptance test of #10 needs: a definite 429 (with the headers) saying Retry-After: 300.
    limits = RateLimitConfig(enabled=True, retry_after_s=300)
    with Emulator(make_scenario(rate_limits=limits), port=0, clock=ManualClock()) as emu:
        client = make_client(emu)
        token = ids(emu, QUIET)["yes_token"]
        control(emu, "POST", "/emulator/rate-limits", {"drain": [client.get_address()]})

        refused = l2_request(emu, client, "POST", "/order", order_body(client, token, 0.30, 5))
        cancel = l2_request(emu, client, "DELETE", "/cancel-all")
        control(emu, "POST", "/emulator/clock", {"advance_ms": 1_000})
        later = l2_request(emu, client, "POST", "/order", order_body(client, token, 0.30, 5))
        st = control(emu, "GET", "/emulator/status")

        assert _rl(refused) == (429, "0", "standard", "300")
        assert _rl(cancel) == (429, "0", "standard", "300")
        assert _rl(later) == (200, "39", "standard", None)  # 40 tokens back after 1 s, one spent
        assert st["rate_limited"] == 2


def control_status(emu: Emulator, body: dict[str, object]) -> int:
    import httpx  # noqa: PLC0415

    return httpx.post(f"{emu.clob_url}/emulator/rate-limits", json=body, timeout=5).status_code


def test_the_venues_tiers_refill_at_their_rates():
    limiter = RateLimiter(RateLimitConfig(enabled=True))
    t0 = 10**18

    first = [limiter.charge("0xA", "orders", 1, t0).allowed for _ in range(61)]  # type: ignore[union-attr]
    after_1s = limiter.charge("0xA", "orders", 40, t0 + 1_000 * NS_PER_MS)
    cancels = limiter.charge("0xA", "cancels", 120, t0)
    over_burst = limiter.charge("0xB", "cancels", 121, t0)

    assert first == [True] * 60 + [False]
    assert after_1s is not None and after_1s.allowed  # 40 orders/s on Standard
    assert after_1s.headers["Poly-RateLimit-Remaining"] == "0"
    assert cancels is not None and cancels.allowed
    assert over_burst is not None and not over_burst.allowed
    assert over_burst.headers["Retry-After"] == "2"  # a full refill: 120 / 80 per s, rounded up
    assert [(t.order_burst, t.cancel_burst) for t in TIERS.values()] == [
        (60, 120),
        (90, 180),
        (120, 240),
        (300, 600),
        (600, 1_200),
    ]
