"""Small file helpers shared by the commands and the emulator."""

from __future__ import annotations

from pathlib import Path


def resolve_named_yaml(name: str, directory: Path, kind: str) -> Path:
    """A name (``default``) of a YAML file in ``directory``, or a path to one.

    Raises:
        FileNotFoundError: No such name; the message lists the known names.
    """
    p = Path(name)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    candidate = directory / f"{name}.yaml"
    if not candidate.exists():
        known = ", ".join(sorted(x.stem for x in directory.glob("*.yaml"))) or "none"
        raise FileNotFoundError(f"no {kind} named {name!r} in {directory}/ (known: {known})")
    return candidate
