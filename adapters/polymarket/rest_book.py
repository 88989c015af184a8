"""Blocking REST ``GET {clob_url}/book?token_id=`` for one-off reads (``refresh-markets`` ranking).

The live feed reads books over the WebSocket and, as a fallback, REST with an async client
(``ws_market``); a command that only wants a few books once uses this one. The payload is parsed by the
same ``decode_book``/``parse_book`` as the feed's. Retries (429, 5xx, no response) follow
``adapters.http_retry``, as Gamma's do. The venue allows 1,500 ``/book`` requests per 10 s per IP
(``docs/polymarket-api.md``); callers bound how many they make.

A book is refused (``BookUnavailable``, one line naming the token and why) when the request fails for
good, the body is not the venue's book, it is another token's, any level cannot be parsed (a partial
book would understate the competition), or it is crossed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import httpx

from adapters.http_retry import RetryingJsonClient, backoff_s, retry_after_s, should_retry
from adapters.polymarket.parse import PayloadError, decode_book, parse_book
from adapters.polymarket.ws_market import DEFAULT_CLOB_URL
from core.messages import BookSnapshot
from core.units import Outcome

__all__ = ["DEFAULT_CLOB_URL", "BookUnavailable", "RestBookClient"]

log = logging.getLogger(__name__)


class BookUnavailable(Exception):
    """A book that could not be read; ``str(err)`` is one line (token and reason).

    ``unreachable``: no attempt got any HTTP reply (connection refused, DNS, timeouts): the venue,
    not this book, is the problem.
    """

    def __init__(self, reason: str, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.unreachable = unreachable


class RestBookClient(RetryingJsonClient):
    """``GET /book`` over ``httpx``; use as a context manager or call ``close()``.

    Args:
        base_url: CLOB REST root.
        timeout_s: Per-request timeout.
        retries: Extra attempts after a retriable failure (429, 5xx, network).
        backoff_s: First backoff; doubles each retry up to ``max_backoff_s``.
        transport: An ``httpx`` transport (``httpx.MockTransport`` in unit tests).
        sleep: Called with the backoff seconds.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_CLOB_URL,
        *,
        timeout_s: float = 10.0,
        retries: int = 1,
        backoff_s: float = 0.5,
        max_backoff_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(
            base_url,
            timeout_s=timeout_s,
            retries=retries,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
            transport=transport,
            sleep=sleep,
        )

    def _get(self, token_id: str) -> bytes:
        last = ""
        replied = False
        retry_after: float | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(backoff_s(attempt, retry_after, first_s=self.backoff_s, max_s=self.max_backoff_s))
            retry_after = None
            self.requests += 1
            try:
                resp = self._http.get("/book", params={"token_id": token_id})
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                self._log_retry(token_id, last, attempt)
                continue
            replied = True
            if should_retry(resp.status_code):
                last = f"HTTP {resp.status_code}"
                retry_after = retry_after_s(resp.headers.get("Retry-After"))
                self._log_retry(token_id, last, attempt)
                continue
            if resp.status_code >= 400:
                body = " ".join(resp.text.split())[:120]
                raise BookUnavailable(
                    f"HTTP {resp.status_code}: {body}" if body else f"HTTP {resp.status_code}"
                )
            return resp.content
        attempts = self.retries + 1
        raise BookUnavailable(
            f"{last} after {attempts} attempt{'s' if attempts > 1 else ''}", unreachable=not replied
        )

    def _log_retry(self, token_id: str, what: str, attempt: int) -> None:
        # A retry is no failure yet: INFO (the caller logs a book that fails for good).
        log.info(
            "GET %s/book %s: %s (attempt %d of %d)",
            self.base_url,
            token_id,
            what,
            attempt + 1,
            self.retries + 1,
        )

    def yes_book(self, market: str, token_id: str) -> BookSnapshot:
        """The book of ``token_id`` (``market``'s YES token), levels best first.

        Raises:
            BookUnavailable: as the module docstring lists; the message is one line.
        """
        body = self._get(token_id)
        skipped: list[str] = []
        try:
            wire = decode_book(body)
            if wire.asset_id != token_id:
                raise BookUnavailable(f"the reply is the book of another token ({wire.asset_id[:20]!r})")
            book = parse_book(wire, market, Outcome.YES, skipped=skipped)
        except PayloadError as exc:
            raise BookUnavailable(f"malformed book: {exc}") from None
        if skipped:
            raise BookUnavailable(f"malformed book: {len(skipped)} bad levels, first {skipped[0]}")
        if book.bids and book.asks and book.bids[0][0] >= book.asks[0][0]:
            raise BookUnavailable(
                f"crossed book: best bid {book.bids[0][0]} px >= best ask {book.asks[0][0]} px"
            )
        return book
