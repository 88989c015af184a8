"""When a blocking REST read retries, and how long it waits: shared by the Gamma and the CLOB book clients.

A read is retried on no response, HTTP 429 and 5xx (anything else is the server's final word). The
wait doubles from ``backoff_s`` up to ``max_backoff_s``; a ``Retry-After`` lengthens it, never past
the cap (a server asking for minutes does not stall a command for minutes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Self

import httpx

__all__ = ["RetryingJsonClient", "backoff_s", "retry_after_s", "should_retry"]


class RetryingJsonClient:
    """A blocking ``httpx`` JSON client with the retry settings above; a context manager.

    ``requests`` counts HTTP requests made, retries included; ``sleep`` is called with each backoff
    (tests pass a recorder).
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float,
        retries: int,
        backoff_s: float,
        max_backoff_s: float,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = max(retries, 0)
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        #: HTTP requests made so far, retries included.
        self.requests = 0
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout_s,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "polymm"},
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()


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
