"""The risk manager's state file: the day's PnL baseline, operator states and latched HALTs.

One small JSON file per state directory and mode (``<state_dir>/risk_state.<mode>.json``: a dry run's
halt never stops live trading), written whole and atomically (a temporary file in the same
directory, then ``os.replace``), so a kill at any moment leaves the old file or the new one, never a
torn one. A save that carries a HALT or an operator's command is ``durable``: the file and its
directory are fsynced before ``save`` returns, so it survives a power loss as well as a kill -9. The
day's PnL, saved each second, is not fsynced (a kill -9 keeps the page cache).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

STATE_FILE: Final = "risk_state.{mode}.json"


class RiskStateError(ValueError):
    """The state file exists but cannot be read (one line for the user)."""


def state_path(state_dir: Path, mode: str) -> Path:
    """Where the risk state of ``mode`` runs in ``state_dir`` is kept."""
    return state_dir / STATE_FILE.format(mode=mode)


class RiskStateFile:
    """Load and save the risk state (``actors.risk.RiskMonitor.to_state``) at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none yet.

        Raises:
            RiskStateError: The file cannot be read or is not a JSON object.
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RiskStateError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        try:
            state = json.loads(data)
        except ValueError as exc:
            raise RiskStateError(f"{self.path}: not JSON: {exc}") from None
        if not isinstance(state, dict):
            raise RiskStateError(f"{self.path}: not a JSON object")
        return state

    def save(self, state: Mapping[str, Any], *, durable: bool) -> None:
        """Replace the file with ``state`` atomically (``durable``: fsynced before returning)."""
        data = json.dumps(state, sort_keys=True, indent=1).encode() + b"\n"
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with tmp.open("wb") as f:
                f.write(data)
                if durable:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        if durable:
            _fsync_dir(self.path.parent)


def _fsync_dir(path: Path) -> None:
    # The rename is durable once the directory is (POSIX); a platform without it is best effort.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
