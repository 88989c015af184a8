"""The SDK's errors and order responses as the gateway reads them: data in, data out.

Errors are produced by the SDK's own HTTP transport from crafted replies (``SyncTransport`` over an
``httpx.MockTransport``), so the mapping is checked against what the pinned SDK really raises.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polymarket import RateLimitUpdate
from polymarket._internal.actions.orders.post import parse_order_responses
from polymarket.clients._transport import SyncTransport
from polymarket.errors import (
    OrderHeartbeatMismatchError,
    RateLimitError,
    RequestRejectedError,
    SigningError,
    TransportError,
    UnexpectedResponseError,
    UserInputError,
)

from adapters.polymarket.errors import (
    AmountMismatch,
    AuthFailed,
    BadResponse,
    OrderRefused,
    PlaceReply,
    PolymarketError,
    RateLimited,
    RateLimitHeaders,
    RateLimitListener,
    RequestRejected,
    TransportFailed,
    VenueUnavailable,
    is_ambiguous,
    place_replies,
    place_reply,
    rate_limit_headers,
    should_retry,
    to_polymarket_error,
)

RATE_HEADERS = {
    "Poly-RateLimit-Remaining": "0",
    "Poly-RateLimit-Reset": "1800000010.5",
    "Poly-RateLimit-Tier": "Copper",
    "Poly-RateLimit-Warning": "true",
}


def sdk_raises(status: int, body: Any = None, headers: dict[str, str] | None = None, path: str = "/orders"):
    """What the SDK's transport raises for this reply (and what its rate-limit listener heard)."""
    heard: list[Any] = []

    def respond(request: httpx.Request) -> httpx.Response:
        if status == 0:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(
            status, headers=headers or {}, json=body if body is not None else {"error": "x"}
        )

    http = httpx.Client(base_url="http://venue.test", transport=httpx.MockTransport(respond))
    transport = SyncTransport(base_url="http://venue.test", client=http, on_rate_limit_update=heard.append)
    with pytest.raises(Exception) as caught:
        transport.post_json(path, json={})
    return caught.value, heard


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind", "code", "retry", "ambiguous"),
    [
        (0, None, None, TransportFailed, None, True, True),
        (429, {"error": "slow down"}, RATE_HEADERS | {"Retry-After": "3"}, RateLimited, 429, True, False),
        (429, {"error": "slow down"}, {"Retry-After": "3"}, RateLimited, 429, True, True),  # a CDN's
        (425, {"error": "restarting"}, {"Retry-After": "9"}, VenueUnavailable, 425, True, False),
        (500, {"error": "boom"}, None, VenueUnavailable, 500, True, True),
        (503, {"error": "Trading is currently disabled"}, None, VenueUnavailable, 503, True, True),
        (503, {"error": "cancel-only mode"}, None, VenueUnavailable, 503, True, True),
        (401, {"error": "Unauthorized/Invalid api key"}, None, AuthFailed, 401, False, False),
        (403, {"error": "forbidden"}, None, AuthFailed, 403, False, False),
        (400, {"error": "invalid signature"}, None, RequestRejected, 400, False, False),
        (404, {"error": "order not found"}, None, RequestRejected, 404, False, False),
    ],
    ids=[
        "no-reply",
        "429-venue",
        "429-cdn",
        "425",
        "500",
        "503",
        "503-cancel-only",
        "401",
        "403",
        "400",
        "404",
    ],
)
def test_sdk_errors_map_onto_ours(status, body, headers, kind, code, retry, ambiguous):
    exc, _ = sdk_raises(status, body, headers)

    err = to_polymarket_error(exc)

    assert type(err) is kind
    assert getattr(err, "status_code", None) == code
    assert should_retry(err) is retry
    assert is_ambiguous(err) is ambiguous


def test_a_venue_429_is_definite_and_carries_retry_after_and_the_rate_limit_state():
    exc, heard = sdk_raises(429, {"error": "too many requests"}, RATE_HEADERS | {"Retry-After": "3"})

    err = to_polymarket_error(exc)

    assert isinstance(exc, RateLimitError) and exc.rate_limit is not None
    assert isinstance(err, RateLimited) and err.definite and err.retry_after_s == 3.0
    assert str(err) == "Request to http://venue.test/orders was rate limited"
    # The listener heard the reply before the SDK raised: the gateway reads the state after a 429 too.
    assert [rate_limit_headers(u) for u in heard] == [
        RateLimitHeaders(remaining=0, reset_s=1800000010.5, tier="Copper", warning=True)
    ]


def test_a_425_and_a_cancel_only_503_keep_their_retry_after_and_say_what_they_are():
    restarting = to_polymarket_error(sdk_raises(425, {"error": "restarting"}, {"Retry-After": "9"})[0])
    cancel_only = to_polymarket_error(sdk_raises(503, {"error": "cancel-only mode"})[0])

    assert isinstance(restarting, VenueUnavailable) and restarting.retry_after_s == 9.0
    assert str(cancel_only).startswith("cancel-only: ")


@given(st.integers(400, 599))
def test_should_retry_status_rule(status):
    err = to_polymarket_error(RequestRejectedError("x", status=status))

    assert should_retry(err) is (status in (425, 429) or status >= 500)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (UnexpectedResponseError("post-orders response did not match expected shape"), BadResponse),
        (UserInputError("signed_orders cannot exceed 15 entries."), PolymarketError),
        (SigningError("no key"), PolymarketError),
        (RecursionError("maximum recursion depth exceeded while decoding a JSON array"), PolymarketError),
        (ValueError("x" * 10_000_000), PolymarketError),
        (TransportError("timed out"), TransportFailed),
        (OrderHeartbeatMismatchError("hb-9"), RequestRejected),
    ],
)
def test_everything_else_is_final_and_short(exc, kind):
    err = to_polymarket_error(exc)

    assert type(err) is kind
    assert len(str(err)) <= 300
    assert should_retry(err) is (kind is TransportFailed)


@pytest.mark.parametrize(
    "err",
    [BadResponse("text"), OrderRefused("off tick"), AmountMismatch("1 micro short"), ValueError("a bug")],
)
def test_our_refusals_and_bugs_are_never_retried_or_ambiguous(err):
    assert not should_retry(err) and not is_ambiguous(err)
    assert to_polymarket_error(OrderRefused("x")).args == ("x",)


# --- order responses -------------------------------------------------------------------------------


def replies(*items: dict[str, Any]) -> tuple[Any, ...]:
    """The SDK's parse of a ``POST /orders`` reply (missing amounts filled in as the venue sends them)."""
    base = {
        "errorMsg": "",
        "makingAmount": "",
        "takingAmount": "",
        "orderID": "",
        "status": "",
        "success": False,
    }
    return parse_order_responses([base | i for i in items])


def test_accepted_rejected_and_success_with_an_empty_order_id():
    got = [
        place_reply(r)
        for r in replies(
            {"success": True, "orderID": "0xab", "status": "live"},
            {"success": False, "errorMsg": "invalid post-only order: order crosses book"},
            {"success": True, "orderID": "", "errorMsg": "not enough balance / allowance"},
            {"success": True, "orderID": "0xcd", "status": "delayed"},
        )
    ]

    assert got == [
        PlaceReply(ok=True, order_id="0xab", status="live"),
        PlaceReply(ok=False, error="invalid post-only order: order crosses book"),
        PlaceReply(ok=False, error="not enough balance / allowance"),
        PlaceReply(ok=True, order_id="0xcd", status="delayed"),
    ]


def test_unmatched_loses_its_id_in_the_sdk_and_is_unknown_here_never_refused():
    # "unmatched": the taker delay ended and the order rests. The SDK makes it a RejectedOrder without
    # the id; our digest identifies it, and the venue's listing says whether it rests.
    (r,) = replies({"success": True, "orderID": "0xab", "status": "unmatched"})

    reply = place_reply(r)

    assert (r.ok, r.code) == (False, "unmatched")
    assert reply.unknown and not reply.ok and reply.status == "unmatched"


def test_a_reply_shorter_than_the_batch_leaves_the_rest_unknown():
    got = place_replies(replies({"success": True, "orderID": "0x1", "status": "live"}), 3)

    assert [r.ok for r in got] == [True, False, False]
    assert [r.unknown for r in got] == [False, True, True]


def test_an_unusable_reply_item_is_unknown():
    assert place_reply(object()).unknown
    assert place_reply(type("Accepted", (), {"ok": True, "order_id": ""})()).unknown


def test_a_huge_rejection_message_is_cut():
    (r,) = replies({"success": False, "errorMsg": "x" * 1_000_000})

    assert len(place_reply(r).error) <= 300


# --- rate-limit state -----------------------------------------------------------------------------------


def test_the_listener_keeps_the_last_state_per_thread_and_hands_it_out_once():
    listener = RateLimitListener()
    listener(RateLimitUpdate(remaining=57.0, reset=1796590712.5, tier="Copper", warning=True))
    other: list[Any] = []

    def elsewhere() -> None:
        other.append(listener.take_rate_limit())
        listener(RateLimitUpdate(remaining=1.0, reset=None, tier=None, warning=False))

    t = threading.Thread(target=elsewhere)
    t.start()
    t.join()

    assert other == [None]  # another thread's replies never mix in
    assert listener.take_rate_limit() == RateLimitHeaders(
        remaining=57, reset_s=1796590712.5, tier="Copper", warning=True
    )
    assert listener.take_rate_limit() is None
    listener(RateLimitUpdate(remaining=None, reset=float("inf"), tier=None, warning=False))
    listener.clear()
    assert listener.take_rate_limit() is None


def test_unusable_rate_limit_values_are_left_out():
    h = rate_limit_headers(RateLimitUpdate(remaining=float("nan"), reset=-5.0, tier="T" * 100, warning=False))

    assert h == RateLimitHeaders(remaining=None, reset_s=0.0, tier="T" * 32, warning=False)
