"""What polymm says about the compiled build, and its refusal of a stale one."""

from __future__ import annotations

import os

import pytest

from app import buildinfo
from app.cli import main
from tests.conftest import COMPILED

SO = ".cpython-311-x86_64-linux-gnu.so"


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A source tree with a package, a subpackage and a data directory, as ``buildinfo.ROOT``."""
    for d in ("pkg", "pkg/sub", "runs/r1"):
        (tmp_path / d).mkdir(parents=True)
    for d in ("pkg", "pkg/sub"):
        (tmp_path / d / "__init__.py").write_text("")
    for f in ("pkg/fast.py", "pkg/slow.py", "pkg/sub/inner.py"):
        (tmp_path / f).write_text("x = 1\n")
    monkeypatch.setattr(buildinfo, "ROOT", tmp_path)
    return tmp_path


def compile_(path, *, before_source: bool = False):
    """Write the compiled file of the module at ``path``, older than its source when asked."""
    ext = path.with_name(path.stem + SO)
    ext.write_bytes(b"\x7fELF")
    t = path.stat().st_mtime + (-10 if before_source else 10)
    os.utime(ext, (t, t))


def test_a_pure_tree_says_pure_python(tree):
    (tree / "runs/r1/blob.so").write_bytes(b"")  # not in a package: not ours

    assert buildinfo.compiled_modules() == []
    assert buildinfo.build_label() == "pure Python"
    assert buildinfo.stale_build_error() is None


def test_compiled_modules_are_named_and_counted(tree):
    compile_(tree / "pkg/fast.py")
    compile_(tree / "pkg/sub/inner.py")
    (tree / ("orphan" + SO)).write_bytes(b"")  # mypyc's shared library at the root: no source

    assert buildinfo.compiled_modules() == ["pkg.fast", "pkg.sub.inner"]
    assert buildinfo.build_label() == "compiled: 2 modules"
    assert buildinfo.stale_build_error() is None


def test_a_source_edited_after_the_build_makes_it_stale(tree):
    compile_(tree / "pkg/fast.py")
    compile_(tree / "pkg/sub/inner.py", before_source=True)

    assert buildinfo.stale_modules() == ["pkg.sub.inner"]
    err = buildinfo.stale_build_error()
    assert err is not None and "pkg.sub.inner" in err and "pkg.fast" not in err
    assert "just build-fast" in err and "just clean-fast" in err


def test_every_command_refuses_a_stale_build_with_one_line(tree, capsys):
    compile_(tree / "pkg/slow.py", before_source=True)

    assert main(["events", str(tree / "no-such-run")]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stale compiled build: pkg.slow" in err


def test_help_is_not_refused_by_a_stale_build(tree, capsys):
    compile_(tree / "pkg/slow.py", before_source=True)

    with pytest.raises(SystemExit) as exc:
        main(["--help"])

    assert exc.value.code == 0 and "polymm" in capsys.readouterr().out


def test_this_tree_reports_the_build_the_suite_runs_on():
    # The suite's header (tests/conftest.py) and polymm agree on whether this tree is compiled.
    label = buildinfo.build_label()
    assert (label == "pure Python") == (not COMPILED)
    assert set(COMPILED) <= set(buildinfo.compiled_modules())
