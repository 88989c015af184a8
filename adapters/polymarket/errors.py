"""Typed failures of the Polymarket order API, and pure functions that classify SDK errors and replies.

The venue's SDK (``polymarket-client``) raises its own errors (``polymarket.errors``); the gateway
never sees them: ``to_polymarket_error`` maps them onto this tree and ``place_replies`` turns its
order responses into values.

Our exception hierarchy::

    PolymarketError                 any failure of the Polymarket adapter
    ├── RequestFailed               an HTTP call did not succeed; ``status_code`` is None without a reply
    │   ├── TransportFailed         no reply (connect error, timeout): the outcome is unknown
    │   ├── RateLimited             429; ``definite`` when the venue's rate-limit headers came with it
    │   ├── VenueUnavailable        425 (matching-engine restart), 503 (cancel-only, trading
    │   │                           disabled) or another 5xx (the outcome may be unknown)
    │   ├── AuthFailed              401 or 403: the credentials are wrong; never retried
    │   └── RequestRejected         any other status (400 invalid order, 404 ...); not retried
    ├── BadResponse                 a 2xx reply we cannot use (not JSON, not the documented shape)
    └── OrderRefused                we refused to send an order (price off the tick, size, amounts)
        └── AmountMismatch          a signed amount differs from our integers

How the SDK's errors map (``to_polymarket_error``):

=====================================================  =============================================
``TransportError`` (no reply, timeout)                 ``TransportFailed``: outcome unknown
``RateLimitError`` with ``rate_limit``                  ``RateLimited(definite=True)``: refused
``RateLimitError`` without (a CDN's 429)               ``RateLimited(definite=False)``: unknown
``RequestRejectedError`` 425 (``restarting``)           ``VenueUnavailable``: back off, retry
``RequestRejectedError`` 5xx (``cancel_only`` ...)      ``VenueUnavailable``
``RequestRejectedError`` 401/403                        ``AuthFailed``
``RequestRejectedError`` other                          ``RequestRejected`` (``status_code``)
``UnexpectedResponseError``                             ``BadResponse``
``UserInputError``, ``SigningError``, anything else     ``PolymarketError``
=====================================================  =============================================

``should_retry(exc)`` is True for 429, 425, >= 500 and "no reply"; ``is_ambiguous(exc)`` says whether
the request may have taken effect anyway (no reply, a 5xx, a CDN's 429), in which case the gateway
asks the venue (REST reconcile) before sending again.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec

logger = logging.getLogger(__name__)

__all__ = [
    "AmountMismatch",
    "AuthFailed",
    "BadResponse",
    "OrderRefused",
    "PlaceReply",
    "PolymarketError",
    "RateLimitHeaders",
    "RateLimitListener",
    "RateLimited",
    "RequestFailed",
    "RequestRejected",
    "TransportFailed",
    "VenueUnavailable",
    "error_message",
    "is_ambiguous",
    "place_replies",
    "place_reply",
    "rate_limit_headers",
    "should_retry",
    "to_polymarket_error",
]

#: HTTP 425 Too Early: the matching engine restarts (about 90 s, weekly); back off and retry.
STATUS_TOO_EARLY: Final = 425
STATUS_RATE_LIMITED: Final = 429


class PolymarketError(Exception):
    """Any failure of the Polymarket adapter."""


class RequestFailed(PolymarketError):
    """An HTTP call did not succeed; ``status_code`` is None when no reply arrived."""

    def __init__(self, message: str, status_code: int | None = None, retry_after_s: float | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.retry_after_s = retry_after_s


class TransportFailed(RequestFailed):
    """No reply at all (connect error, timeout): whether the request took effect is unknown."""


class RateLimited(RequestFailed):
    """429 Too Many Requests; ``definite`` when the venue's rate-limit headers came with it.

    A 429 without them came from a CDN in front of the venue: whether the request arrived is unknown.
    """

    definite = True


class VenueUnavailable(RequestFailed):
    """425 (engine restart) or a 5xx (503 cancel-only or trading disabled included)."""


class AuthFailed(RequestFailed):
    """401 or 403: the API credentials are not accepted."""


class RequestRejected(RequestFailed):
    """Any other non-2xx status: the venue refused the request as sent."""


class BadResponse(PolymarketError):
    """A 2xx reply we cannot use."""


class OrderRefused(PolymarketError):
    """We refused to send an order; the message says why."""


class AmountMismatch(OrderRefused):
    """A signed order whose amounts, side or token differ from our exact integer computation."""


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def should_retry(exc: BaseException) -> bool:
    """Whether a failed request is worth sending again after a backoff.

    True for 429, 425, any status >= 500, and failures without a status (no reply); everything else
    (4xx, bad replies, our refusals, bugs) is final. Takes our errors (map the SDK's first).
    """
    if not isinstance(exc, RequestFailed):
        return False
    status = _status_of(exc)
    if status is None:
        return True
    return status in (STATUS_TOO_EARLY, STATUS_RATE_LIMITED) or status >= 500


def is_ambiguous(exc: BaseException) -> bool:
    """Whether a failed request may still have taken effect (no reply, a server error, a CDN's 429)."""
    if not isinstance(exc, RequestFailed):
        return False
    if isinstance(exc, RateLimited):
        return not exc.definite
    status = _status_of(exc)
    return status is None or status >= 500


#: A venue's error text is cut to this (a hostile reply may carry megabytes).
MAX_ERROR_CHARS: Final = 300


def _cut(text: str) -> str:
    text = " ".join(text.split()) if len(text) < 4 * MAX_ERROR_CHARS else " ".join(text[:1200].split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def error_message(body: object) -> str:
    """The human part of a venue error (``{"error": ...}``, ``{"error_msg": ...}``, text), one short line."""
    if isinstance(body, Mapping):
        for key in ("error", "error_msg", "errorMsg", "message"):
            value = body.get(key)
            if value:
                return _cut(value if isinstance(value, str) else str(value)[:1200])
        return _cut(str(dict(body))[:1200])
    if isinstance(body, BaseException):
        return _cut(str(body)[:1200])
    return _cut(str(body)[:1200])


def to_polymarket_error(exc: BaseException) -> PolymarketError:
    """Map an SDK (or any other) exception onto our hierarchy; ours are returned unchanged."""
    if isinstance(exc, PolymarketError):
        return exc
    from polymarket.errors import (  # noqa: PLC0415  (the SDK is loaded by whoever raised this)
        RateLimitError,
        RequestRejectedError,
        TransportError,
        UnexpectedResponseError,
    )

    message = error_message(exc)
    if isinstance(exc, TransportError):
        return TransportFailed(message)
    if isinstance(exc, RateLimitError):
        err = RateLimited(message, STATUS_RATE_LIMITED, _seconds(exc.retry_after))
        err.definite = exc.rate_limit is not None
        return err
    if isinstance(exc, RequestRejectedError):
        status = exc.status
        retry_after = _seconds(exc.retry_after)
        if exc.restriction in ("cancel_only", "post_only"):
            message = f"{exc.restriction.replace('_', '-')}: {message}"
        if status == STATUS_RATE_LIMITED:
            return RateLimited(message, status, retry_after)
        if status == STATUS_TOO_EARLY or status >= 500:
            return VenueUnavailable(message, status, retry_after)
        if status in (401, 403):
            return AuthFailed(message, status)
        return RequestRejected(message, status)
    if isinstance(exc, UnexpectedResponseError):
        return BadResponse(message)
    return PolymarketError(_cut(f"{type(exc).__name__}: {message}"))


def _seconds(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return max(0.0, float(value))
    return None


# --- order responses ---------------------------------------------------------------------------------


class PlaceReply(msgspec.Struct, frozen=True, kw_only=True):
    """The venue's answer for one posted order.

    ``ok`` orders rest (or traded) under ``order_id``. Otherwise ``error`` says why; ``unknown`` means
    the reply does not settle this order (none came for it, or the venue said ``unmatched``: its
    taker delay ended and it may rest), so the venue is asked.
    """

    ok: bool
    order_id: str = ""
    status: str = ""
    error: str = ""
    unknown: bool = False


def place_reply(resp: object) -> PlaceReply:
    """One SDK order response (``AcceptedOrder`` / ``RejectedOrder``) as a ``PlaceReply``.

    The SDK accepts only ``success`` with an empty ``errorMsg``, an ``orderID`` and a status of
    ``live``/``matched``/``delayed``; everything else is a ``RejectedOrder`` without the id, the
    venue's message kept. ``unmatched`` (the taker delay ended, the order now rests) is such a
    rejection too: it is reported as unknown, never as refused.
    """
    if getattr(resp, "ok", None) is True:
        order_id = str(getattr(resp, "order_id", "") or "")
        if not order_id:
            return PlaceReply(ok=False, error="accepted without an order id", unknown=True)
        return PlaceReply(ok=True, order_id=order_id, status=str(getattr(resp, "status", "") or "live"))
    code = str(getattr(resp, "code", "") or "")
    message = error_message(str(getattr(resp, "message", "") or "rejected"))
    if code == "unmatched":
        return PlaceReply(ok=False, status="unmatched", error=f"unmatched: {message}", unknown=True)
    if getattr(resp, "ok", None) is not False:
        return PlaceReply(ok=False, error=f"unusable reply item: {type(resp).__name__}", unknown=True)
    return PlaceReply(ok=False, error=message)


def place_replies(responses: Sequence[object], expected: int) -> list[PlaceReply]:
    """The SDK's replies to one ``post_orders`` as one ``PlaceReply`` per order sent, in order.

    A list shorter than the batch leaves the missing orders ``unknown`` (extra items are ignored).
    """
    replies = [place_reply(r) for r in list(responses)[:expected]]
    if len(responses) != expected:
        logger.warning("batch reply has %d items for %d orders", len(responses), expected)
    replies.extend(
        PlaceReply(ok=False, error="no reply for this order", unknown=True)
        for _ in range(expected - len(replies))
    )
    return replies


# --- rate-limit state ----------------------------------------------------------------------------------


class RateLimitHeaders(msgspec.Struct, frozen=True, kw_only=True):
    """A reply's ``Poly-RateLimit-*`` headers: tokens left, when the bucket is full again (unix s), tier."""

    remaining: int | None = None
    reset_s: float | None = None
    tier: str = ""
    warning: bool = False


def rate_limit_headers(update: Any) -> RateLimitHeaders:
    """The SDK's ``RateLimitUpdate`` (``remaining``/``reset`` floats, ``tier``, ``warning``) as ours."""
    remaining = _seconds(getattr(update, "remaining", None))  # finite and >= 0, or None
    reset = _seconds(getattr(update, "reset", None))
    return RateLimitHeaders(
        remaining=int(remaining) if remaining is not None else None,
        reset_s=reset,
        tier=str(getattr(update, "tier", "") or "")[:32],
        warning=bool(getattr(update, "warning", False)),
    )


class RateLimitListener:
    """The SDK's ``on_rate_limit_update``: the last reply's ``Poly-RateLimit-*`` state, per thread.

    The SDK calls it synchronously, on the calling thread, for every CLOB reply carrying the headers
    (errors included, before it raises), so right after a call the gateway's thread reads what its
    own request was told (``take_rate_limit``) and the heartbeat thread's replies never mix in.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def __call__(self, update: Any) -> None:
        """The SDK's listener callback."""
        self._local.rate = rate_limit_headers(update)

    def take_rate_limit(self) -> RateLimitHeaders | None:
        """The rate-limit state of the last reply on this thread (then forgotten); None if it had none."""
        value: RateLimitHeaders | None = getattr(self._local, "rate", None)
        self._local.rate = None
        return value

    def clear(self) -> None:
        """Forget this thread's last state (before a call whose headers are to be read)."""
        self._local.rate = None
