"""The venue model: what the simulator, paper trading and the exchange emulator trade against.

* ``venue.exchange``: ``SimExchange``, one market's displayed liquidity (replayed, generated or live)
  plus our orders, with queue models; the simulator's venue and, unchanged, paper trading's;
* ``venue.matching``: ``MatchingEngine``, a deterministic price-time matching engine with the venue's
  cross-token matching, fees and settlement; the exchange emulator's order book;
* ``venue.markouts``: markouts of our fills, measured on the venue side.

Deterministic and free of I/O like ``core`` (time comes in, ids come from counters), and it imports
nothing of ours but ``core``: ``sim``, ``adapters`` (paper) and ``emulator`` build on it.
"""
