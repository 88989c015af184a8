"""The tape cache: a hit gives back exactly the tapes the source makes, and never serves stale ones."""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.recording import MANIFEST, Manifest, RecordedMarket, Recorder
from app.configfile import load_struct
from core.markets import MarketInfo
from core.messages import BookSnapshot, MarketResolved, TickSizeChanged
from core.units import Outcome, Side
from sim import tape_cache
from sim.scenario import Scenario, WsReplaySource, scenario_tapes
from sim.tape import MarketTape
from sim.tape_cache import TapeCache

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "configs" / "scenarios"
BBO_EXCERPT = ROOT / "tests" / "fixtures" / "datasets" / "bbo_polls_2026-07-10_excerpt.csv.gz"


def same(a: list[MarketTape], b: list[MarketTape]) -> None:
    """Column for column, special for special, market for market, notes for notes."""
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.info == y.info
        for col in ("ts", "op", "px", "qty"):
            assert getattr(x, col) == getattr(y, col), col
            assert getattr(x, col).typecode == getattr(y, col).typecode
        assert x.specials == y.specials
        assert msgspec.json.encode(x.meta) == msgspec.json.encode(y.meta)
        assert msgspec.json.encode(x.source) == msgspec.json.encode(y.source)


def scenario(name: str, **changes: object) -> Scenario:
    sc = load_struct(SCENARIOS / f"{name}.yaml", Scenario)
    return msgspec.structs.replace(sc, **changes) if changes else sc


@pytest.mark.parametrize("name", ["default", "bbo_replay", "ws_replay"])
def test_a_hit_gives_back_exactly_what_the_source_makes(tmp_path, name):
    sc = scenario(name)
    if name == "default":  # a shorter run of the same generator
        sc = msgspec.structs.replace(sc, source=msgspec.structs.replace(sc.source, duration_s=120))
    made = scenario_tapes(sc, SCENARIOS)
    cache = TapeCache(tmp_path)
    cold = scenario_tapes(sc, SCENARIOS, cache)
    assert cache.last == "miss"
    warm = scenario_tapes(sc, SCENARIOS, cache)
    assert cache.last == "hit"
    same(made, cold)
    same(made, warm)
    assert len(list(tmp_path.glob("*.npz"))) == 1


def test_tapes_of_one_load_still_share_their_source_notes(tmp_path):
    cache = TapeCache(tmp_path)
    sc = scenario("bbo_replay")
    scenario_tapes(sc, SCENARIOS, cache)
    warm = scenario_tapes(sc, SCENARIOS, cache)
    assert len(warm) > 1 and all(t.source is warm[0].source for t in warm)


def test_the_seed_the_source_config_and_the_input_bytes_are_all_in_the_key(tmp_path):
    data = tmp_path / "polls.csv.gz"
    shutil.copy(BBO_EXCERPT, data)
    sc = scenario("bbo_replay")
    sc = msgspec.structs.replace(sc, source=msgspec.structs.replace(sc.source, path=str(data), max_markets=2))
    cache = TapeCache(tmp_path / "cache")
    first = scenario_tapes(sc, tmp_path, cache)
    assert cache.last == "miss"
    scenario_tapes(sc, tmp_path, cache)
    assert cache.last == "hit"
    scenario_tapes(msgspec.structs.replace(sc, seed=sc.seed + 1), tmp_path, cache)
    assert cache.last == "miss"
    other = msgspec.structs.replace(sc.source, informed_fraction=sc.source.informed_fraction / 2)
    scenario_tapes(msgspec.structs.replace(sc, source=other), tmp_path, cache)
    assert cache.last == "miss"
    # The same path with other bytes (a market's polls dropped): a miss, and the new data's tapes.
    lines = gzip.decompress(data.read_bytes()).decode().splitlines(keepends=True)
    dropped = first[0].info.market
    data.write_bytes(gzip.compress("".join(x for x in lines if f",{dropped}," not in x).encode()))
    again = scenario_tapes(sc, tmp_path, cache)
    assert cache.last == "miss"
    assert dropped not in {t.info.market for t in again}
    same(again, scenario_tapes(sc, tmp_path))


def test_a_change_to_the_code_that_makes_tapes_is_a_miss(tmp_path, monkeypatch):
    cache = TapeCache(tmp_path)
    sc = scenario("ws_replay")
    scenario_tapes(sc, SCENARIOS, cache)
    monkeypatch.setattr(tape_cache, "code_digest", lambda: "0" * 64)
    scenario_tapes(sc, SCENARIOS, cache)
    assert cache.last == "miss"
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_the_code_digest_covers_every_file_it_names():
    for rel in tape_cache.CODE_FILES:
        assert (ROOT / rel).is_file(), rel
    # the sources are all named (a new source module must join the list)
    sources = {f"sim/sources/{p.name}" for p in (ROOT / "sim" / "sources").glob("*.py")}
    assert sources <= set(tape_cache.CODE_FILES)


def test_a_corrupt_entry_is_rebuilt_with_a_warning(tmp_path, caplog):
    cache = TapeCache(tmp_path)
    sc = scenario("ws_replay")
    made = scenario_tapes(sc, SCENARIOS, cache)
    (entry,) = tmp_path.glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="sim.tape_cache"):
        again = scenario_tapes(sc, SCENARIOS, cache)
    assert cache.last == "rebuilt"
    assert "unreadable" in caplog.text
    same(made, again)
    scenario_tapes(sc, SCENARIOS, cache)
    assert cache.last == "hit"


def test_an_entry_stored_under_another_key_is_not_served(tmp_path):
    cache = TapeCache(tmp_path)
    a, b = scenario("ws_replay"), scenario("ws_replay", seed=99)
    scenario_tapes(a, SCENARIOS, cache)
    (entry,) = tmp_path.glob("*.npz")
    key_b = cache.key(b.source, b.seed, [SCENARIOS / b.source.path])  # type: ignore[union-attr]
    shutil.copy(entry, tmp_path / f"{key_b}.npz")
    scenario_tapes(b, SCENARIOS, cache)
    assert cache.last == "rebuilt"


def test_an_unwritable_cache_never_fails_the_run(tmp_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    cache = TapeCache(blocker / "tapes")
    sc = scenario("ws_replay")
    with caplog.at_level(logging.WARNING, logger="sim.tape_cache"):
        tapes = scenario_tapes(sc, SCENARIOS, cache)
    same(scenario_tapes(sc, SCENARIOS), tapes)
    assert "cannot store" in caplog.text


def test_where_the_cache_lives():
    assert TapeCache.from_env({"POLYMM_TAPE_CACHE": "off"}) is None
    assert TapeCache.from_env({"POLYMM_TAPE_CACHE": "/x/y"}).directory == Path("/x/y")  # type: ignore[union-attr]
    assert TapeCache.from_env({"XDG_CACHE_HOME": "/c"}).directory == Path("/c/polymm/tapes")  # type: ignore[union-attr]
    home = TapeCache.from_env({})
    assert home is not None and home.directory == Path.home() / ".cache" / "polymm" / "tapes"


def test_polymm_sim_gives_the_same_digest_cold_and_warm(tmp_path):
    env = dict(os.environ, POLYMM_TAPE_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "app.cli", "sim", "--config", str(ROOT / "configs" / "market_maker.yaml")]
    cmd += ["--scenario", "bbo_replay", "--no-report", "--quiet"]
    digests = []
    for i in range(2):
        subprocess.run([*cmd, "--out", str(tmp_path / f"run{i}")], env=env, check=True, capture_output=True)
        digests.append(msgspec.json.decode((tmp_path / f"run{i}" / "summary.json").read_bytes())["digest"])
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    assert digests[0] == digests[1]


_sides = st.sampled_from([Side.BUY, Side.SELL])


@st.composite
def tapes(draw: st.DrawFn) -> list[MarketTape]:
    out = []
    shared: dict[str, object] = {"type": "test", "notes": draw(st.lists(st.text(max_size=5), max_size=3))}
    for i in range(draw(st.integers(0, 3))):
        info = MarketInfo(
            market=f"m{i}", yes_token=f"y{i}", no_token=f"n{i}", tick_px=draw(st.sampled_from([1, 10, 100]))
        )
        tape = MarketTape(info)
        ts = draw(st.integers(0, 2**62))
        for _ in range(draw(st.integers(0, 30))):
            ts += draw(st.integers(0, 10**9))
            kind = draw(st.integers(0, 4))
            px = draw(st.integers(1, 9_999))
            qty = draw(st.integers(0, 2**62))
            if kind == 0:
                tape.level(ts, draw(_sides), px, qty)
            elif kind == 1:
                tape.trade(ts, draw(_sides), px, qty)
            elif kind == 2:
                tape.special(
                    BookSnapshot(
                        market=info.market, outcome=Outcome.YES, ts_ns=ts, bids=((px, qty),), asks=()
                    )
                )
            elif kind == 3:
                tape.special(TickSizeChanged(market=info.market, outcome=Outcome.YES, ts_ns=ts, tick_px=10))
            else:
                tape.special(MarketResolved(market=info.market, ts_ns=ts, yes_won=draw(st.booleans())))
        tape.meta = {"i": i, "x": draw(st.floats(allow_nan=False, allow_infinity=False))}
        tape.source = shared
        out.append(tape)
    return out


@settings(max_examples=50)
@given(tapes())
def test_write_then_read_is_the_identity(tmp_path_factory, made):
    path = tmp_path_factory.mktemp("tc") / "entry.npz"
    tape_cache.write(path, "k", made)
    same(made, tape_cache.read(path, "k"))
    with pytest.raises(ValueError):
        tape_cache.read(path, "another key")


def test_one_file_of_a_recording_is_keyed_with_the_manifest_beside_it(tmp_path):
    # A recording's markets, ticks and fees come from its manifest: replaying one of its files must
    # miss when the manifest changes, though the file itself did not.
    info = MarketInfo(market="0x" + "ab" * 32, yes_token="111", no_token="222", tick_px=10)
    manifest = Manifest(kind="record", ws_url="ws://x", markets=(RecordedMarket.from_info(info, slug="s"),))
    rec = Recorder(tmp_path / "r", manifest).start()
    book = {
        "event_type": "book",
        "asset_id": "111",
        "market": info.market,
        "timestamp": "1800000000000",
        "bids": [{"price": "0.49", "size": "10"}],
        "asks": [{"price": "0.51", "size": "10"}],
    }
    rec.on_frame(msgspec.json.encode(book).decode())
    written = rec.close()
    one_file = tmp_path / "r" / written.files[0].name
    sc = Scenario(source=WsReplaySource(path=str(one_file)))
    cache = TapeCache(tmp_path / "cache")
    first = scenario_tapes(sc, tmp_path, cache)
    assert first and first[0].info.tick_px == 10
    scenario_tapes(sc, tmp_path, cache)
    assert cache.last == "hit"
    on_disk = msgspec.json.decode((tmp_path / "r" / MANIFEST).read_bytes())
    on_disk["markets"][0]["tick_px"] = 100
    (tmp_path / "r" / MANIFEST).write_bytes(msgspec.json.encode(on_disk))
    again = scenario_tapes(sc, tmp_path, cache)
    assert cache.last == "miss"
    assert again[0].info.tick_px == 100
