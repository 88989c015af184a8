"""The core's exceptions; expected outcomes are values (``Decision.no_quote``, ``Rejected``), not errors."""

from __future__ import annotations


class InvariantError(AssertionError):
    """State that must never happen (corrupt data is worse than no data): crash the actor."""
