"""When a blocking REST read retries, and how long it waits: shared by the Gamma and the CLOB book clients.

A read is retried on no response, HTTP 429 and 5xx (anything else is the server's final word). The
wait doubles from ``backoff_s`` up to ``max_backoff_s``; a ``Retry-After`` lengthens it, never past
the cap (a server asking for minutes does not stall a command for minutes).
"""

from __future__ import annotations

__all__ = ["backoff_s", "retry_after_s", "should_retry"]


def should_retry(status: int | None) -> bool:
    """Retry on no response (``None``), 429 and 5xx."""
    return status is None or status == 429 or status >= 500


def retry_after_s(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (not negative); ``None`` when absent or not a number."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def backoff_s(attempt: int, retry_after: float | None, *, first_s: float, max_s: float) -> float:
    """The wait before retry ``attempt`` (1: the first retry): doubling, ``Retry-After`` honoured, capped."""
    delay: float = min(first_s * 2.0 ** (attempt - 1), max_s)
    if retry_after is not None:
        delay = min(max(delay, retry_after), max_s)
    return delay
