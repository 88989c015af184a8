"""``RestBookClient``: REST ``GET /book`` in the venue's shape, retries, and every way a book is refused."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from adapters.polymarket.rest_book import BookUnavailable, RestBookClient
from core.units import QTY_ONE, Outcome

TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"

# The venue's shape (docs/polymarket-api.md): strings, bids ascending and asks descending (best LAST).
VENUE_BOOK: dict[str, Any] = {
    "market": "0xabc",
    "asset_id": TOKEN,
    "timestamp": "1773305000123",
    "hash": "0x1",
    "bids": [{"price": "0.47", "size": "250"}, {"price": "0.48", "size": "100.5"}],
    "asks": [{"price": "0.53", "size": "300"}, {"price": "0.52", "size": "75"}],
    "min_order_size": "5",
    "tick_size": "0.01",
    "neg_risk": False,
    "last_trade_price": "0.50",
}


def client(
    answers: list[httpx.Response | Exception], retries: int = 1
) -> tuple[RestBookClient, list[httpx.Request], list[float]]:
    """A client whose requests get ``answers`` in turn; returns it, the requests made and the sleeps."""
    seen: list[httpx.Request] = []
    slept: list[float] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    c = RestBookClient(
        "http://clob.test/", retries=retries, transport=httpx.MockTransport(handler), sleep=slept.append
    )
    return c, seen, slept


def ok(body: Any) -> httpx.Response:
    return httpx.Response(200, content=body if isinstance(body, bytes) else json.dumps(body).encode())


def test_a_venue_book_is_read_best_first_with_its_tick_and_min_size() -> None:
    c, seen, _ = client([ok(VENUE_BOOK)])

    book = c.yes_book("0xabc", TOKEN)

    assert (seen[0].url.path, dict(seen[0].url.params)) == ("/book", {"token_id": TOKEN})
    assert book.bids == ((4800, 100_500_000), (4700, 250 * QTY_ONE))
    assert book.asks == ((5200, 75 * QTY_ONE), (5300, 300 * QTY_ONE))
    assert (book.market, book.outcome, book.tick_px, book.min_qty) == ("0xabc", Outcome.YES, 100, 5 * QTY_ONE)
    assert c.requests == 1


def test_a_book_with_an_empty_side_is_a_book() -> None:
    c, _, _ = client([ok({**VENUE_BOOK, "asks": []})])

    book = c.yes_book("0xabc", TOKEN)

    assert book.asks == ()
    assert len(book.bids) == 2


def test_429_and_5xx_are_retried_with_the_backoff_and_retry_after() -> None:
    c, seen, slept = client(
        [httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(503), ok(VENUE_BOOK)], retries=2
    )

    book = c.yes_book("0xabc", TOKEN)

    assert book.bids[0] == (4800, 100_500_000)
    assert len(seen) == c.requests == 3
    assert slept == [2.0, 1.0]  # Retry-After lengthens the first wait; the second doubles 0.5


def test_a_network_error_that_outlasts_the_retries_names_it() -> None:
    c, _, slept = client([httpx.ConnectError("refused"), httpx.ConnectError("refused")], retries=1)

    with pytest.raises(BookUnavailable, match=r"^ConnectError: refused after 2 attempts$") as err:
        c.yes_book("0xabc", TOKEN)
    assert err.value.unreachable  # no reply at all: the venue, not this book
    assert slept == [0.5]
    assert c.requests == 2


@pytest.mark.parametrize(
    "answers", [[httpx.ConnectError("refused"), httpx.Response(503)], [httpx.Response(404)]]
)
def test_a_book_the_venue_answered_for_is_not_unreachable(answers) -> None:
    c, _, _ = client(answers, retries=len(answers) - 1)

    with pytest.raises(BookUnavailable) as err:
        c.yes_book("0xabc", TOKEN)
    assert not err.value.unreachable


def test_a_final_status_is_not_retried_and_quotes_the_body() -> None:
    missing = {"error": "No orderbook exists for the requested token id"}
    c, seen, _ = client([httpx.Response(404, json=missing)])

    with pytest.raises(BookUnavailable, match=r'^HTTP 404: \{"error":"No orderbook exists'):
        c.yes_book("0xabc", TOKEN)
    assert len(seen) == 1


def test_5xx_without_retries_is_one_attempt() -> None:
    c, _, _ = client([httpx.Response(500)], retries=0)

    with pytest.raises(BookUnavailable, match=r"^HTTP 500 after 1 attempt$"):
        c.yes_book("0xabc", TOKEN)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>maintenance</html>", r"^malformed book: book: "),
        (b"[]", r"^malformed book: book: "),
        ({**VENUE_BOOK, "asset_id": "42"}, r"^the reply is the book of another token \('42'\)$"),
        (
            {**VENUE_BOOK, "bids": [{"price": "0.48", "size": "lots"}, {"price": "0.47", "size": "5"}]},
            r"^malformed book: 1 bad levels, first book: bids\[0\]\.size",
        ),
        ({**VENUE_BOOK, "bids": [{"price": "1.7", "size": "5"}], "asks": []}, r"^malformed book: bids\[0\]"),
        ({**VENUE_BOOK, "tick_size": "0.03"}, r"^malformed book: tick_size: "),
        (
            {**VENUE_BOOK, "bids": [{"price": "0.55", "size": "5"}]},
            r"^crossed book: best bid 5500 px >= best ask 5200 px$",
        ),
    ],
)
def test_a_book_that_cannot_be_trusted_is_refused_in_one_line(body: Any, reason: str) -> None:
    c, _, _ = client([ok(body)])

    with pytest.raises(BookUnavailable, match=reason) as err:
        c.yes_book("0xabc", TOKEN)
    assert "\n" not in str(err.value)


def test_the_client_closes_as_a_context_manager() -> None:
    with RestBookClient("http://clob.test") as c:
        assert not c._http.is_closed
    assert c._http.is_closed
