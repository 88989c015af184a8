"""The pure functional core of polymm.

Contract: modules here import only the standard library, msgspec, sortedcontainers and each other,
and never read the clock, randomness, files or the network (``tests/test_architecture.py``).
"""
