"""Which of polymm's modules run compiled (``just build-fast``, optional), and whether that build is stale.

The compiled build (``bench/fast.py``) writes a ``.so`` beside each compiled module's ``.py``, and
Python imports the ``.so`` first: after an edit to the source, a stale ``.so`` would silently run
the old code. So every command refuses a stale build (``app.cli``), and a simulation states which
build it ran on (``build`` in its summary: events/s differ by build, decisions do not).
"""

from __future__ import annotations

from pathlib import Path

#: The source tree: polymm's packages are its top-level directories.
ROOT = Path(__file__).resolve().parent.parent

#: What a build leaves beside a module's source: ``<stem>.cpython-311-x86_64-linux-gnu.so`` and the like.
_SUFFIXES = (".so", ".pyd")


def _packages() -> list[Path]:
    # polymm's packages and their subpackages (not runs/, local_state/ or tests/fixtures/).
    top = [d for d in ROOT.iterdir() if (d / "__init__.py").is_file()]
    return top + [d for p in top for d in p.iterdir() if (d / "__init__.py").is_file()]


def _compiled_files() -> list[Path]:
    return [f for d in _packages() for f in d.iterdir() if f.suffix in _SUFFIXES]


def _source(ext: Path) -> Path:
    return ext.with_name(ext.name.split(".", 1)[0] + ".py")


def compiled_modules() -> list[str]:
    """Dotted names of the modules that import compiled from this tree, sorted."""
    return sorted(
        ".".join(src.relative_to(ROOT).with_suffix("").parts)
        for src in map(_source, _compiled_files())
        if src.is_file()
    )


def stale_modules() -> list[str]:
    """Compiled modules whose source changed after they were compiled (Python would run the old code)."""
    out = []
    for ext in _compiled_files():
        src = _source(ext)
        if src.is_file() and ext.stat().st_mtime < src.stat().st_mtime:
            out.append(".".join(src.relative_to(ROOT).with_suffix("").parts))
    return sorted(out)


def build_label() -> str:
    """``pure Python``, or ``compiled: N modules``: what a run states about the code it ran on."""
    n = len(compiled_modules())
    return f"compiled: {n} modules" if n else "pure Python"


def stale_build_error() -> str | None:
    """One line for a stale compiled build, or None when there is none."""
    old = stale_modules()
    if not old:
        return None
    return (
        f"polymm: stale compiled build: {', '.join(old)} changed after `just build-fast` compiled them, "
        "so the old code would run: `just build-fast` again, or `just clean-fast` for pure Python"
    )
