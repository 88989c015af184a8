"""Typed failures of the Polymarket order API, and pure functions that classify replies and errors.

The blocking client (``py_clob_client_v2``) raises ``PolyApiException`` for any status other than 200
(``status_code`` is None when no reply arrived) and returns ``resp.json()`` or ``resp.text``
otherwise. The gateway never sees those: ``to_polymarket_error`` maps them onto this tree, and
``check_*`` turn replies into values.

Our exception hierarchy::

    PolymarketError                 any failure of the Polymarket adapter
    ├── RequestFailed               an HTTP call did not succeed; ``status_code`` is None without a reply
    │   ├── TransportFailed         no reply (connect error, timeout): the outcome is unknown
    │   ├── RateLimited             429; ``retry_after_s`` from the Retry-After header when sent
    │   ├── VenueUnavailable        425 (matching-engine restart) or >= 500 (the outcome may be unknown)
    │   ├── AuthFailed              401 or 403: the credentials are wrong; never retried
    │   └── RequestRejected         any other status (400 invalid order, 404 ...); not retried
    ├── BadResponse                 a 200 reply we cannot use (text, an "error" key, a wrong shape)
    └── OrderRefused                we refused to send an order (price off the tick, size, amounts)
        └── AmountMismatch          the client's signed amounts differ from our integers (#142)

``should_retry(exc)`` is True for 429, 425, >= 500 and "no status"; ``is_ambiguous(exc)`` says
whether the request may have taken effect anyway (no reply, or a 5xx), in which case the gateway
asks the venue (REST reconcile) before sending again.
"""

from __future__ import annotations

import email.utils
import logging
import math
import threading
from collections.abc import Mapping
from typing import Any, Final

import httpx
import msgspec

logger = logging.getLogger(__name__)

__all__ = [
    "AmountMismatch",
    "AuthFailed",
    "BadResponse",
    "CancelReply",
    "OrderRefused",
    "PlaceReply",
    "PolymarketError",
    "RateLimitHeaders",
    "RateLimited",
    "RequestFailed",
    "RequestRejected",
    "RetryAfterProbe",
    "TransportFailed",
    "VenueUnavailable",
    "check_batch_response",
    "check_cancel_response",
    "check_response",
    "error_message",
    "is_ambiguous",
    "parse_place_reply",
    "parse_rate_limit_headers",
    "parse_retry_after",
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
    """425 (engine restart) or a 5xx."""


class AuthFailed(RequestFailed):
    """401 or 403: the API credentials are not accepted."""


class RequestRejected(RequestFailed):
    """Any other non-200 status: the venue refused the request as sent."""


class BadResponse(PolymarketError):
    """A 200 reply we cannot use."""


class OrderRefused(PolymarketError):
    """We refused to send an order; the message says why."""


class AmountMismatch(OrderRefused):
    """The client signed amounts that differ from our exact integer computation."""


def _status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def should_retry(exc: BaseException) -> bool:
    """Whether a failed request is worth sending again after a backoff.

    True for 429, 425, any status >= 500, and failures without a status (no reply). Works on our
    ``RequestFailed``, the client's ``PolyApiException`` (same ``status_code`` attribute) and
    ``httpx.TransportError``. Everything else (4xx, our refusals, bugs) is final.
    """
    if isinstance(exc, httpx.TransportError):
        return True
    if isinstance(exc, (BadResponse, OrderRefused)):
        return False
    if not isinstance(exc, RequestFailed) and not hasattr(exc, "status_code"):
        return False
    status = _status_of(exc)
    if status is None:
        return True
    return status in (STATUS_TOO_EARLY, STATUS_RATE_LIMITED) or status >= 500


def is_ambiguous(exc: BaseException) -> bool:
    """Whether a failed request may still have taken effect (no reply, or a server error)."""
    if isinstance(exc, httpx.TransportError):
        return True
    if not isinstance(exc, RequestFailed) and not hasattr(exc, "status_code"):
        return False
    status = _status_of(exc)
    return status is None or status >= 500


#: A venue's error text is cut to this (a hostile reply may carry megabytes).
MAX_ERROR_CHARS: Final = 300


def _cut(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def error_message(body: object) -> str:
    """The human part of a venue error body (``{"error": ...}``, ``{"error_msg": ...}``, text), cut short."""
    if isinstance(body, Mapping):
        for key in ("error", "error_msg", "errorMsg", "message"):
            value = body.get(key)
            if value:
                return _cut(str(value) if not isinstance(value, str) else value)
        return _cut(str(dict(body)))
    return _cut(str(body))


def parse_retry_after(value: str | None, now_s: float) -> float | None:
    """A Retry-After header (delta seconds or an HTTP date) as seconds from ``now_s``; None if absent."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None  # "inf" would pause forever
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now_s)


def to_polymarket_error(exc: BaseException, retry_after_s: float | None = None) -> PolymarketError:
    """Map a client or transport exception onto our hierarchy (ours are returned unchanged)."""
    if isinstance(exc, PolymarketError):
        return exc
    if isinstance(exc, httpx.TransportError):
        return TransportFailed(f"{type(exc).__name__}: {exc}")
    if hasattr(exc, "status_code"):
        status = _status_of(exc)
        message = error_message(getattr(exc, "error_msg", None) or exc)
        if status is None:
            return TransportFailed(message)
        if status == STATUS_RATE_LIMITED:
            return RateLimited(message, status, retry_after_s)
        if status == STATUS_TOO_EARLY or status >= 500:
            return VenueUnavailable(message, status, retry_after_s)
        if status in (401, 403):
            return AuthFailed(message, status)
        return RequestRejected(message, status)
    return PolymarketError(f"{type(exc).__name__}: {exc}")


def check_response(resp: object) -> dict[str, Any]:
    """A single-object reply as a dict; raises ``BadResponse`` for text or an ``error`` key."""
    if isinstance(resp, str):
        raise BadResponse(f"expected a JSON object, got text: {resp[:200]!r}")
    if not isinstance(resp, dict):
        raise BadResponse(f"expected a JSON object, got {type(resp).__name__}")
    if resp.get("error"):
        raise BadResponse(error_message(resp))
    return resp


class PlaceReply(msgspec.Struct, frozen=True, kw_only=True):
    """The venue's answer for one posted order.

    ``ok`` orders rest (or traded) under ``order_id``. Otherwise ``error`` says why; ``unknown`` means
    the reply did not cover this order, so whether it rests is unknown.
    """

    ok: bool
    order_id: str = ""
    status: str = ""
    error: str = ""
    unknown: bool = False


def parse_place_reply(item: object) -> PlaceReply:
    """One ``POST /order(s)`` reply item.

    ``success: false`` is a rejection, and so is ``success: true`` with an empty ``orderID`` (batch
    replies do that, with the reason in ``errorMsg``).
    """
    if not isinstance(item, Mapping):
        return PlaceReply(ok=False, error=f"unusable reply item: {item!r}"[:300], unknown=True)
    order_id = str(item.get("orderID") or item.get("orderId") or "")
    reason = _cut(str(item.get("errorMsg") or item.get("error_msg") or item.get("error") or ""))
    status = str(item.get("status") or "")
    if not item.get("success", False):
        return PlaceReply(ok=False, order_id=order_id, status=status, error=reason or "rejected")
    if not order_id:
        return PlaceReply(ok=False, status=status, error=reason or "success without an orderID")
    return PlaceReply(ok=True, order_id=order_id, status=status, error=reason)


def check_batch_response(resp: object, expected: int) -> list[PlaceReply]:
    """A ``POST /orders`` reply as one ``PlaceReply`` per order sent, in order.

    A list shorter than the batch leaves the missing orders ``unknown``; a reply that is not a list
    raises ``BadResponse`` (the caller treats the whole batch as unknown).
    """
    if isinstance(resp, Mapping) and not isinstance(resp, list):
        check_response(dict(resp))  # an error object raises with its message
        raise BadResponse(f"expected a list of {expected} replies, got an object")
    if not isinstance(resp, list):
        check_response(resp)
        raise BadResponse(f"expected a list of {expected} replies, got {type(resp).__name__}")
    replies = [parse_place_reply(item) for item in resp[:expected]]
    if len(resp) != expected:
        logger.warning("batch reply has %d items for %d orders", len(resp), expected)
    replies.extend(
        PlaceReply(ok=False, error="no reply for this order", unknown=True)
        for _ in range(expected - len(replies))
    )
    return replies


class CancelReply(msgspec.Struct, frozen=True, kw_only=True):
    """``{"canceled": [ids], "not_canceled": {id: reason}}``."""

    canceled: tuple[str, ...] = ()
    not_canceled: tuple[tuple[str, str], ...] = ()


def check_cancel_response(resp: object) -> CancelReply:
    """A cancel reply (``DELETE /order(s)``, ``/cancel-all``, ``/cancel-market-orders``)."""
    body = check_response(resp)
    canceled = body.get("canceled") or []
    not_canceled = body.get("not_canceled") or body.get("notCanceled") or {}
    if not isinstance(canceled, list) or not isinstance(not_canceled, Mapping):
        raise BadResponse(f"unusable cancel reply: {str(body)[:300]}")
    return CancelReply(
        canceled=tuple(str(i) for i in canceled),
        not_canceled=tuple((str(k), str(v)) for k, v in not_canceled.items()),
    )


class RateLimitHeaders(msgspec.Struct, frozen=True, kw_only=True):
    """A reply's ``Poly-RateLimit-*`` headers: tokens left, when the bucket is full again (unix s), tier."""

    remaining: int | None = None
    reset_s: float | None = None
    tier: str = ""
    warning: bool = False


def parse_rate_limit_headers(headers: Mapping[str, str]) -> RateLimitHeaders | None:
    """The ``Poly-RateLimit-*`` headers of a reply (any case); None when it carries none.

    A 429 without them came from a CDN in front of the venue: whether the request arrived is unknown.
    Unreadable values are left out (never raised: a header must not fail an order).
    """
    lower = {k.lower(): v for k, v in headers.items() if k.lower().startswith("poly-ratelimit-")}
    if not lower:
        return None
    remaining: int | None = None
    reset: float | None = None
    text = lower.get("poly-ratelimit-remaining", "").strip()
    try:
        remaining = max(0, int(float(text))) if text else None
    except (ValueError, OverflowError):
        remaining = None
    text = lower.get("poly-ratelimit-reset", "").strip()
    try:
        reset = float(text) if text else None
    except ValueError:
        reset = None
    if reset is not None and not math.isfinite(reset):
        reset = None
    warning = lower.get("poly-ratelimit-warning", "").strip().lower() in ("1", "true", "yes")
    return RateLimitHeaders(
        remaining=remaining,
        reset_s=reset,
        tier=lower.get("poly-ratelimit-tier", "").strip()[:32],
        warning=warning,
    )


class RetryAfterProbe:
    """Remember the Retry-After and the rate-limit headers of the last reply seen on each thread.

    The client's ``PolyApiException`` keeps the status and body but drops the headers, so an httpx
    response hook records Retry-After (of a 429/425/503) and the ``Poly-RateLimit-*`` headers (of any
    reply) where the gateway can read them right after the call.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._installed: set[int] = set()

    def install(self, client: httpx.Client) -> None:
        """Add the hook to ``client`` (idempotent)."""
        if id(client) in self._installed:
            return
        self._installed.add(id(client))
        client.event_hooks["response"] = [*client.event_hooks.get("response", []), self._on_response]

    def uninstall(self, client: httpx.Client) -> None:
        """Remove the hook from ``client``."""
        hooks = client.event_hooks.get("response", [])
        client.event_hooks["response"] = [h for h in hooks if h != self._on_response]
        self._installed.discard(id(client))

    def _on_response(self, response: httpx.Response) -> None:
        if response.status_code in (STATUS_TOO_EARLY, STATUS_RATE_LIMITED, 503):
            self._local.value = response.headers.get("retry-after")
        else:
            self._local.value = None
        self._local.rate = parse_rate_limit_headers(response.headers)
        self._local.status = response.status_code

    def take_rate_limit(self) -> RateLimitHeaders | None:
        """The rate-limit headers of the last reply on this thread (then forgotten); None if it had none."""
        value: RateLimitHeaders | None = getattr(self._local, "rate", None)
        self._local.rate = None
        return value

    def peek_rate_limit(self) -> RateLimitHeaders | None:
        """The same, without forgetting it (to classify a 429 before the gateway reads the headers)."""
        return getattr(self._local, "rate", None)

    def take(self, now_s: float) -> float | None:
        """Seconds to wait per the last reply on this thread (then forget it); None if none was sent."""
        value: str | None = getattr(self._local, "value", None)
        self._local.value = None
        return parse_retry_after(value, now_s)
