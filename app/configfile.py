"""Load YAML configs into frozen Structs, reporting mistakes as ``FILE: dotted.key: what is wrong``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TypeVar

import msgspec

from core.config import Config

T = TypeVar("T")

_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<key>[^`]+)`$")
_KEYED = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*): (?P<msg>.*)$", re.DOTALL)


class ConfigFileError(Exception):
    """A config file that cannot be used; ``str(err)`` is the one line to show the user."""


def _dotted(path: str) -> str:
    # msgspec paths look like `.quoting.levels` or `.market_selection.exclude_tags[0]`.
    return path.lstrip(".")


def format_validation_error(source: str, message: str) -> str:
    """Turn a msgspec validation message into ``FILE: dotted.key: what is wrong``."""
    m = _AT.match(message.strip())
    msg, path = (m.group("msg"), _dotted(m.group("path") or "")) if m else (message, "")
    unknown = _UNKNOWN.match(msg)
    if unknown:
        key = ".".join(p for p in (path, unknown.group("key")) if p)
        return f"{source}: {key}: unknown key"
    keyed = _KEYED.match(msg)
    if keyed:
        key = ".".join(p for p in (path, keyed.group("key")) if p)
        return f"{source}: {key}: {keyed.group('msg')}"
    return f"{source}: {path or '(top level)'}: {msg[0].lower() + msg[1:] if msg else 'invalid'}"


def load_struct(path: str | Path, type_: type[T]) -> T:
    """Read and decode a YAML file into ``type_``; raise ``ConfigFileError`` with one clear line."""
    p = Path(path)
    source = str(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ConfigFileError(f"{source}: (file): no such file") from None
    except OSError as exc:
        raise ConfigFileError(f"{source}: (file): cannot read: {exc.strerror}") from None
    if not data.strip():
        raise ConfigFileError(f"{source}: (top level): the file is empty")
    try:
        return msgspec.yaml.decode(data, type=type_)
    except msgspec.ValidationError as exc:
        raise ConfigFileError(format_validation_error(source, str(exc))) from None
    except msgspec.DecodeError as exc:
        first = " ".join(str(exc).split())
        raise ConfigFileError(f"{source}: (syntax): {first}") from None


def load_config(path: str | Path) -> Config:
    """Load a strategy config (``configs/market_maker.yaml`` and friends)."""
    return load_struct(path, Config)
