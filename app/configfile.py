"""Load YAML configs into frozen Structs, reporting mistakes as ``FILE: dotted.key: what is wrong``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final, TypeVar

import msgspec

from core.config import Config

T = TypeVar("T")

#: A config is a few kB; these bounds keep a hostile or broken file from exhausting the parser
#: (PyYAML's C composer recurses without a limit: a deeply nested file would crash the process).
MAX_CONFIG_BYTES: Final = 1_000_000
MAX_CONFIG_DEPTH: Final = 32
MAX_CONFIG_ALIASES: Final = 100

_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<key>[^`]+)`$")
_KEYED = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*): (?P<msg>.*)$", re.DOTALL)


class ConfigFileError(Exception):
    """Bad input (a config file, a flag, a credential) that cannot be used; ``str(err)`` is the one
    line to show the user. The command exits 2."""


class ServiceUnavailable(Exception):
    """A service the command needs (Gamma, the CLOB) cannot be reached at start; one line, exit 1."""


def check_yaml_shape(data: bytes, source: str) -> None:
    """Refuse YAML nested deeper than ``MAX_CONFIG_DEPTH`` or with more than ``MAX_CONFIG_ALIASES``
    aliases, before it is composed (scanning the event stream is iterative and cheap)."""
    import yaml  # noqa: PLC0415 (msgspec.yaml imports it anyway, only when a file is read)

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    depth = aliases = 0
    try:
        for event in yaml.parse(data, Loader=loader):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_CONFIG_DEPTH:
                    raise ConfigFileError(f"{source}: (syntax): nested deeper than {MAX_CONFIG_DEPTH} levels")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_CONFIG_ALIASES:
                    raise ConfigFileError(
                        f"{source}: (syntax): more than {MAX_CONFIG_ALIASES} YAML aliases (*name)"
                    )
    except yaml.YAMLError as exc:
        # PyYAML >= 6.0.4 has its own flow-depth limit (~1000), which its scanner may reach before
        # this loop sees level 33: the same mistake, reported as ours.
        if "nesting depth" in str(exc):
            raise ConfigFileError(
                f"{source}: (syntax): nested deeper than {MAX_CONFIG_DEPTH} levels"
            ) from None
        return  # a syntax error: the decoder reports it with its position


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
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigFileError(
            f"{source}: (file): {len(data):,} bytes; a config is at most {MAX_CONFIG_BYTES:,}"
        )
    if not data.strip():
        raise ConfigFileError(f"{source}: (top level): the file is empty")
    check_yaml_shape(data, source)
    try:
        return msgspec.yaml.decode(data, type=type_)
    except msgspec.ValidationError as exc:
        raise ConfigFileError(_one_line(format_validation_error(source, str(exc)))) from None
    except msgspec.DecodeError as exc:
        raise ConfigFileError(_one_line(f"{source}: (syntax): {exc}")) from None
    except RecursionError:
        raise ConfigFileError(f"{source}: (syntax): nested too deeply") from None


def _one_line(text: str, limit: int = 300) -> str:
    # Messages quote values from the file: keep them on one line and short.
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def load_config(path: str | Path) -> Config:
    """Load a strategy config (``configs/market_maker.yaml`` and friends)."""
    return load_struct(path, Config)


def refuse_risk_manager(cfg: Config, path: str | Path) -> None:
    """A risk_manager config places no quotes: commands that quote refuse it with one line."""
    if cfg.strategy == "risk_manager":
        raise ConfigFileError(
            f"{path}: strategy: a risk_manager config places no quotes; give a trading config as --config "
            "(it may take this one as --risk-config)"
        )


def load_risk_config(path: str | Path) -> Config:
    """``--risk-config``: a risk_manager config (``configs/risk.yaml``) whose ``risk`` limits apply."""
    cfg = load_config(path)
    if cfg.strategy != "risk_manager":
        raise ConfigFileError(
            f"{path}: strategy: {cfg.strategy}: --risk-config takes a risk_manager config (configs/risk.yaml)"
        )
    return cfg
