"""Error classification and reply checks of the Polymarket order API: data in, data out."""

from __future__ import annotations

import email.utils

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from py_clob_client_v2.exceptions import PolyApiException

from adapters.polymarket.errors import (
    AmountMismatch,
    AuthFailed,
    BadResponse,
    CancelReply,
    OrderRefused,
    PlaceReply,
    RateLimited,
    RequestRejected,
    RetryAfterProbe,
    TransportFailed,
    VenueUnavailable,
    check_batch_response,
    check_cancel_response,
    check_response,
    is_ambiguous,
    parse_place_reply,
    parse_retry_after,
    should_retry,
    to_polymarket_error,
)


def api_error(status: int, body: object = None) -> PolyApiException:
    return PolyApiException(httpx.Response(status, json=body if body is not None else {"error": "x"}))


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (RateLimited("slow down", 429), True),
        (VenueUnavailable("engine restart", 425), True),
        (VenueUnavailable("boom", 500), True),
        (VenueUnavailable("trading disabled", 503), True),
        (TransportFailed("timeout"), True),
        (RequestRejected("invalid order", 400), False),
        (AuthFailed("bad key", 401), False),
        (RequestRejected("not found", 404), False),
        (BadResponse("text"), False),
        (OrderRefused("off tick"), False),
        (AmountMismatch("#142"), False),
        (ValueError("a bug"), False),
        (api_error(429), True),
        (api_error(425), True),
        (api_error(502), True),
        (api_error(400), False),
        (api_error(401), False),
        (PolyApiException(error_msg="Request exception!"), True),
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, bool) else str(v),
)
def test_should_retry_table(exc, retry):
    assert should_retry(exc) is retry


@given(st.integers(100, 599))
def test_should_retry_status_rule(status):
    assert should_retry(api_error(status)) is (status in (425, 429) or status >= 500)


@pytest.mark.parametrize(
    ("exc", "ambiguous"),
    [
        (api_error(429), False),
        (api_error(425), False),
        (api_error(500), True),
        (PolyApiException(error_msg="Request exception!"), True),
        (api_error(400), False),
        (OrderRefused("no"), False),
    ],
)
def test_is_ambiguous_only_when_the_request_may_have_landed(exc, ambiguous):
    assert is_ambiguous(exc) is ambiguous


@pytest.mark.parametrize(
    ("exc", "kind", "status"),
    [
        (api_error(429, {"error": "rate limited"}), RateLimited, 429),
        (api_error(425), VenueUnavailable, 425),
        (api_error(503), VenueUnavailable, 503),
        (api_error(401), AuthFailed, 401),
        (api_error(400, {"error": "invalid signature"}), RequestRejected, 400),
        (PolyApiException(error_msg="Request exception!"), TransportFailed, None),
        (httpx.ConnectError("refused"), TransportFailed, None),
    ],
)
def test_to_polymarket_error_maps_status(exc, kind, status):
    err = to_polymarket_error(exc, retry_after_s=2.0)

    assert type(err) is kind
    assert getattr(err, "status_code", None) == status


def test_to_polymarket_error_keeps_the_message_and_retry_after():
    err = to_polymarket_error(api_error(429, {"error": "too many requests"}), retry_after_s=3.0)

    assert str(err) == "too many requests"
    assert isinstance(err, RateLimited)
    assert err.retry_after_s == 3.0


def test_check_response_refuses_text_and_error_objects():
    assert check_response({"heartbeat_id": "1"}) == {"heartbeat_id": "1"}
    with pytest.raises(BadResponse, match=r"^expected a JSON object, got text"):
        check_response("<html>")
    with pytest.raises(BadResponse, match=r"^trading disabled$"):
        check_response({"error": "trading disabled"})
    with pytest.raises(BadResponse):
        check_response([1])


def test_place_reply_success_with_empty_order_id_is_a_rejection():
    reply = parse_place_reply({"success": True, "orderID": "", "errorMsg": "not enough balance / allowance"})

    assert reply == PlaceReply(ok=False, error="not enough balance / allowance")


def test_place_reply_success_false_and_ok():
    bad = parse_place_reply({"success": False, "errorMsg": "invalid post-only order: order crosses book"})
    good = parse_place_reply({"success": True, "orderID": "0xab", "status": "live", "errorMsg": ""})

    assert not bad.ok
    assert bad.error == "invalid post-only order: order crosses book"
    assert good == PlaceReply(ok=True, order_id="0xab", status="live")


def test_batch_reply_shorter_than_the_batch_leaves_the_rest_unknown():
    replies = check_batch_response([{"success": True, "orderID": "0x1"}], 3)

    assert [r.ok for r in replies] == [True, False, False]
    assert [r.unknown for r in replies] == [False, True, True]


def test_batch_reply_that_is_not_a_list_raises():
    with pytest.raises(BadResponse, match=r"^boom$"):
        check_batch_response({"error": "boom"}, 2)
    with pytest.raises(BadResponse, match=r"^expected a list"):
        check_batch_response({"weird": 1}, 2)


def test_cancel_reply_accepts_both_spellings():
    a = check_cancel_response({"canceled": ["0x1"], "not_canceled": {"0x2": "already canceled or matched"}})
    b = check_cancel_response({"canceled": [], "notCanceled": {"0x2": "gone"}})

    assert a == CancelReply(canceled=("0x1",), not_canceled=(("0x2", "already canceled or matched"),))
    assert b.not_canceled == (("0x2", "gone"),)


def test_parse_retry_after_seconds_date_and_garbage():
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)

    assert parse_retry_after("2", now) == 2.0
    assert parse_retry_after("0.5", now) == 0.5
    assert parse_retry_after(date, now) == pytest.approx(30.0, abs=1.0)
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_retry_after_probe_reads_the_header_of_the_failed_reply():
    probe = RetryAfterProbe()
    client = httpx.Client(
        transport=httpx.MockTransport(lambda req: httpx.Response(429, headers={"Retry-After": "7"}))
    )
    probe.install(client)
    probe.install(client)  # idempotent

    client.get("http://venue.test/orders")

    assert probe.take(0.0) == 7.0
    assert probe.take(0.0) is None
    assert len(client.event_hooks["response"]) == 1
    probe.uninstall(client)
    assert client.event_hooks["response"] == []
