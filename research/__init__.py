"""The research loop on top of the simulator: read a run, compare two runs, report on one, sweep parameters.

Layering: ``research`` reads what ``sim`` (and paper trading) wrote and may run simulations through a
function the app hands it; it imports ``core`` and ``sim``, never ``app``. Nothing in ``core``,
``actors``, ``adapters``, ``sim`` or ``emulator`` imports it (``tests/research/test_layering.py``).
Every module reads a run through ``research.runlog.read_run``, the one place that knows the on-disk
format of a run directory.
"""
