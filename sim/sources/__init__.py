"""The simulator's data sources: each turns a config into ``list[MarketTape]``, deterministically.

* ``synthetic``: a seeded generator (latent fair value, makers, noise and informed takers);
* ``bbo_csv``: real best bid/offer polls with synthetic depth and flow around them;
* ``hbt_npz``: L2 event files in hftbacktest's normalized ``.npz`` format.

A scenario picks one with the ``type`` tag of ``SourceConfig``.
"""

from __future__ import annotations

from pathlib import Path

from sim.sources import bbo_csv, hbt_npz, synthetic
from sim.sources.bbo_csv import BboCsvSource
from sim.sources.hbt_npz import HbtNpzSource
from sim.sources.synthetic import SyntheticSource
from sim.tape import MarketTape

__all__ = ["BboCsvSource", "HbtNpzSource", "SourceConfig", "SyntheticSource", "load_tapes"]

#: Where a scenario's market data comes from, tagged by ``type``.
# The recorded market-channel replay (``ws_replay``) joins this union as a fourth member; until then
# ``sim.scenario`` accepts it next to ``SourceConfig``.
SourceConfig = SyntheticSource | BboCsvSource | HbtNpzSource


def load_tapes(source: SourceConfig, seed: int, base_dir: Path) -> list[MarketTape]:
    """Generate or load the tapes of ``source``.

    Args:
        source: The source config.
        seed: The run's seed (sources without randomness ignore it).
        base_dir: Directory that relative paths in ``source`` resolve against (the scenario's).

    Returns:
        One tape per market, in the source's market order.
    """
    match source:
        case SyntheticSource():
            return synthetic.generate(source, seed)
        case BboCsvSource():
            return bbo_csv.load(source, seed, base_dir)
        case HbtNpzSource():
            return hbt_npz.load(source, base_dir)
