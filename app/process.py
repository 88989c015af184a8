"""Process-wide settings the trading process keeps whatever its dependencies do.

The recursion limit: ``py_ecc`` raises it to 100,000 for its own pairing code, which polymm never
calls. The venue SDK's pins (eth-account 0.13) no longer install it, but where it is installed (older
eth-account releases import it; the deprecated py-clob-client-v2, a test-time client, brings it) it
comes in with ``eth_account``. With that limit a deeply nested reply (a 198 kB JSON of nested arrays)
makes a C decoder overflow the thread's stack and the process dies with a segfault; at Python's
default the decoder raises ``RecursionError``, which the decoders turn into a skipped message. So
whoever imports the venue SDK lazily restores the default right after
(``restore_default_recursion_limit``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

log = logging.getLogger(__name__)

#: CPython's default, or a lower limit already set when this module was first imported.
DEFAULT_RECURSION_LIMIT: Final = min(sys.getrecursionlimit(), 1000)


def restore_default_recursion_limit() -> None:
    """Put the recursion limit back to ``DEFAULT_RECURSION_LIMIT`` if an import raised it."""
    current = sys.getrecursionlimit()
    if current != DEFAULT_RECURSION_LIMIT:
        log.debug("recursion limit %d restored to %d", current, DEFAULT_RECURSION_LIMIT)
        sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)


@contextmanager
def keep_default_recursion_limit() -> Iterator[None]:
    """Restore the default recursion limit after the block (imports inside it may raise it)."""
    try:
        yield
    finally:
        restore_default_recursion_limit()
