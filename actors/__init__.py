"""Actors: one pykka actor per market around a plain ``MarketSession``, a supervisor, a gateway."""
