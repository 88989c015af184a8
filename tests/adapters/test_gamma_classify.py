"""Classification (Gamma tags, then the local embedding model) and the Chroma market index, offline."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters.classify import (
    CategoryCache,
    ClassifyUnavailable,
    MarketIndex,
    SentenceEmbedder,
    category_from_metadata,
    classify_extra_available,
    classify_markets,
    load_embedder,
)
from adapters.gamma import parse_market
from core.selection import CATEGORIES, MarketRecord
from tests.gamma_server import fixture_markets

# The test command installs the extra; in CI a missing extra fails instead of skipping.
requires_extra = pytest.mark.skipif(
    not classify_extra_available() and not os.environ.get("CI"),
    reason="the classify extra is not installed: pip install -e '.[classify]'",
)


def market(n: int, question: str, **changes: Any) -> MarketRecord:
    return msgspec.structs.replace(
        MarketRecord(market_id=str(n), condition_id=f"0x{n:x}", question=question), **changes
    )


class KeywordEmbedder:
    """A hand-written stub: one axis per category, set when a keyword occurs; records its calls."""

    KEYWORDS = (
        ("politics", "election"),
        ("crypto", "bitcoin"),
        ("sports", "match"),
        ("finance", "rates"),
        ("tech", "ai model"),
        ("science", "hurricane"),
        ("entertainment", "oscars"),
        ("other", "tweet"),
    )

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        out = []
        for t in texts:
            v = [1.0 if k in t.lower() else 0.0 for _name, k in self.KEYWORDS]
            norm = sum(x * x for x in v) ** 0.5 or 1.0
            out.append([x / norm for x in v])
        return out


@pytest.fixture
def no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connection or name lookup that is not for the loopback address (Unix sockets pass)."""
    real = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in (
            "127.0.0.1",
            "::1",
            "localhost",
        ):
            raise AssertionError(f"network access to {address!r} during an offline test")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    real_lookup = socket.getaddrinfo

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", "::1", "localhost", None):
            raise AssertionError(f"name lookup of {host!r} during an offline test")
        return real_lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)


@pytest.fixture(scope="module")
def embedder() -> SentenceEmbedder:
    """The real packaged model, loaded once for the module (and once per process by load_embedder)."""
    return load_embedder()


# --- Gamma metadata -----------------------------------------------------------------------------------------


def test_category_from_metadata_uses_event_tags() -> None:
    assert (
        category_from_metadata(market(1, "?", tags=("world-elections", "politics", "earn-4"))) == "politics"
    )
    assert category_from_metadata(market(1, "?", tag_labels=("Crypto Prices",))) == "crypto"


def test_category_from_metadata_majority_of_tags_wins() -> None:
    m = market(1, "?", tags=("crypto-summit", "politics", "elections", "trump"))

    assert category_from_metadata(m) == "politics"


def test_category_from_metadata_falls_back_to_legacy_category_then_fee_type() -> None:
    assert category_from_metadata(market(1, "?", gamma_category="US-current-affairs")) == "politics"
    assert category_from_metadata(market(1, "?", fee_type="sports_fees_v2")) == "sports"
    assert category_from_metadata(market(1, "?", fee_type="crypto_fees")) == "crypto"
    assert category_from_metadata(market(1, "?")) is None


def test_category_from_metadata_on_fixture_markets() -> None:
    cats = {m.market_id: category_from_metadata(m) for m in map(parse_market, fixture_markets())}

    assert cats["1878152"] == "sports"  # feeType sports_fees_v2
    assert cats["1557558"] == "crypto"  # feeType crypto_fees
    assert cats["12"] == "politics"  # legacy category US-current-affairs
    assert cats["1812085"] is None  # no tags, no category: the model's job


# --- classify_markets with a stub embedder ------------------------------------------------------------------


def test_classify_tags_first_then_model() -> None:
    stub = KeywordEmbedder()
    tagged = market(1, "Bitcoin match?", tags=("politics",))
    untagged = market(2, "Will the Lakers win the match?")

    out, report = classify_markets([tagged, untagged], embedder_factory=lambda: stub)

    assert [(m.category, m.category_source) for m in out] == [("politics", "tags"), ("sports", "embedding")]
    assert (report.from_tags, report.from_model, report.model_used) == (1, 1, True)


def test_classify_every_market_gets_a_known_category() -> None:
    stub = KeywordEmbedder()
    markets = [market(i, q) for i, q in enumerate(["election", "bitcoin", "nothing at all", "oscars night"])]

    out, _ = classify_markets(markets, embedder_factory=lambda: stub)

    assert [m.category for m in out] == ["politics", "crypto", "other", "entertainment"]
    assert all(m.category in CATEGORIES for m in out)


def test_classify_cache_by_market_id_skips_the_model(tmp_path: Path) -> None:
    stub = KeywordEmbedder()
    cache = CategoryCache(tmp_path / "categories.json")
    markets = [market(1, "Will the Fed cut rates?")]
    classify_markets(markets, cache=cache, embedder_factory=lambda: stub)
    cache.save()
    calls = len(stub.calls)

    out, report = classify_markets(
        markets, cache=CategoryCache(tmp_path / "categories.json"), embedder_factory=lambda: stub
    )

    assert out[0].category == "finance"
    assert report.from_cache == 1
    assert len(stub.calls) == calls


def test_classify_without_the_extra_falls_back_to_tags_and_says_so() -> None:
    def missing() -> KeywordEmbedder:
        raise ClassifyUnavailable("the embedding model is not installed: pip install -e '.[classify]'")

    out, report = classify_markets(
        [market(1, "x", tags=("nba",)), market(2, "Will it rain?")], embedder_factory=missing
    )

    assert [m.category for m in out] == ["sports", "other"]
    assert "fell back to Gamma tags" in report.note
    assert "pip install" in report.summary()


def test_classify_without_model_and_no_default_leaves_unclassified() -> None:
    out, report = classify_markets([market(1, "Will it rain?")], use_model=False, default=None)

    assert out[0].category == ""
    assert report.defaulted == 0


# --- the real model and Chroma (the classify extra) ------------------------------------------------


@requires_extra
def test_embedder_is_loaded_once_per_process(embedder: SentenceEmbedder) -> None:
    assert load_embedder() is embedder
    [v] = embedder.encode(["Will Bitcoin be above $100,000?"])
    assert len(v) == 384
    assert sum(x * x for x in v) == pytest.approx(1.0, abs=1e-4)


@requires_extra
@pytest.mark.usefixtures("no_internet")
def test_model_classifies_questions_without_tags(embedder: SentenceEmbedder) -> None:
    questions = {
        "Will the price of Bitcoin be above $120,000 on December 31?": "crypto",
        "Will the Lakers win the 2027 NBA Finals?": "sports",
        "Will Gavin Newsom win the 2028 Democratic presidential nomination?": "politics",
        "Will the Fed cut interest rates in December?": "finance",
        "Will OpenAI release GPT-6 before July?": "tech",
        "Will 2026 be the hottest year on record?": "science",
        "Which film will win Best Picture at the Oscars?": "entertainment",
        "Russia x Ukraine ceasefire by end of 2027?": "politics",
    }
    markets = [market(i, q) for i, q in enumerate(questions)]

    out, report = classify_markets(markets, embedder_factory=lambda: embedder)

    assert {m.question: m.category for m in out} == questions
    assert report.from_model == len(questions)


@requires_extra
@pytest.mark.usefixtures("no_internet")
def test_index_upsert_twice_keeps_size_and_search_finds_market(
    tmp_path: Path, embedder: SentenceEmbedder
) -> None:
    records = [parse_market(raw) for raw in fixture_markets()]
    index = MarketIndex(tmp_path / "chroma", embedder_factory=lambda: embedder)

    first = index.upsert(records)
    second = MarketIndex(tmp_path / "chroma", embedder_factory=lambda: embedder).upsert(records)
    hits = index.search("Gretchen Whitmer Democratic presidential nomination", n=3)

    assert (first.added, first.total) == (22, 22)
    assert (second.added, second.reembedded, second.unchanged, second.total) == (0, 0, 22, 22)
    assert hits[0].market_id == "559659"
    assert hits[0].similarity > hits[-1].similarity


@requires_extra
def test_index_reembeds_only_changed_text(tmp_path: Path, embedder: SentenceEmbedder) -> None:
    records = [parse_market(raw) for raw in fixture_markets()[:3]]
    index = MarketIndex(tmp_path / "chroma", embedder_factory=lambda: embedder)
    index.upsert(records)
    changed = [msgspec.structs.replace(records[0], description="new text"), *records[1:]]

    report = index.upsert(changed)

    assert (report.added, report.reembedded, report.unchanged, report.total) == (0, 1, 2, 3)


@requires_extra
def test_index_search_filters_by_category(tmp_path: Path, embedder: SentenceEmbedder) -> None:
    records = [
        msgspec.structs.replace(parse_market(raw), category="sports" if i % 2 else "crypto")
        for i, raw in enumerate(fixture_markets()[:6])
    ]
    index = MarketIndex(tmp_path / "chroma", embedder_factory=lambda: embedder)
    index.upsert(records)

    hits = index.search("bitcoin", n=10, category="sports")

    assert hits
    assert {h.category for h in hits} == {"sports"}
