"""The command line itself: lazy imports, one-line argument errors, and the trading process's limits."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.cli import build_parser, main
from app.commands import COMMANDS, HELP
from app.process import DEFAULT_RECURSION_LIMIT

REPO = Path(__file__).resolve().parents[2]


def python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter at the repository root (nothing imported yet)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_top_level_help_imports_no_command_and_no_venue_library():
    proc = python(
        """
        import sys
        from app.cli import main
        try:
            main(["--help"])
        except SystemExit:
            pass
        heavy = ("app.commands.", "app.bootstrap", "emulator", "eth_account", "py_ecc",
                 "polymarket", "py_clob_client_v2", "httpx", "pykka", "websockets")
        print(sorted(m for m in sys.modules if m.startswith(heavy)))
        print(sys.getrecursionlimit())
        """
    )

    assert proc.returncode == 0, proc.stderr
    *_, modules, limit = proc.stdout.strip().splitlines()
    assert modules == "[]"
    assert int(limit) == 1000
    for name, _module, text in COMMANDS:
        assert name in proc.stdout and text[:30] in " ".join(proc.stdout.split())


def test_the_trading_command_imports_neither_the_emulator_nor_the_demo():
    proc = python(
        """
        import sys
        from app.cli import build_parser
        build_parser(["run-market-maker", "--config", "x.yaml"])
        heavy = ("emulator", "app.commands.demo", "py_ecc", "polymarket")
        print(sorted(m for m in sys.modules if m.startswith(heavy)))
        print(sys.getrecursionlimit())
        """
    )

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["[]", "1000"]


def test_live_trading_imports_the_venue_sdk_and_keeps_the_default_recursion_limit():
    # The SDK's eth-* dependencies may import py_ecc (eth-keyfile >= 0.9 does), which raises the limit
    # to 100,000; with that limit a deeply nested reply overflows the C stack (segfault) instead of
    # raising RecursionError. Importing py_ecc here too, whatever the resolved versions do, checks that
    # the default is restored all the same.
    proc = python(
        """
        import json, sys
        import msgspec
        from app.compose import import_live
        try:
            import py_ecc  # noqa: F401  (raises the limit when installed)
        except ImportError:
            sys.setrecursionlimit(100_000)  # what it would do
        import_live()
        assert "polymarket" in sys.modules and "polymarket.clients.secure" in sys.modules
        print(sys.getrecursionlimit())
        from adapters.polymarket.parse import AssetMap, decode_market_frame, decode_user_frame
        deep = "[" * 200_000 + "]" * 200_000
        for decode in (json.loads, msgspec.json.decode):
            try:
                decode(deep)
            except RecursionError:
                print("RecursionError")
        print(decode_market_frame(deep, AssetMap()), decode_user_frame(deep, AssetMap()))
        """
    )

    assert proc.returncode == 0, proc.stderr[-2000:]  # -11 would be the segfault
    assert proc.stdout.split() == ["1000", "RecursionError", "RecursionError", "[]", "[]"]


def test_every_command_module_registers_what_the_table_says():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")

    assert list(sub.choices) == [name for name, _m, _h in COMMANDS]  # type: ignore[attr-defined]
    for action in sub._choices_actions:  # type: ignore[attr-defined]
        assert action.help == HELP[action.dest]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["quote"], "polymm quote: the following arguments are required: --config, --book"),
        (["bogus"], "polymm: argument COMMAND: invalid choice: 'bogus'"),
        (
            ["sim", "--config", "c", "--out", "o", "--seed", "x"],
            "polymm sim: argument --seed: invalid int value",
        ),
        (
            ["refresh-markets", "--config", "c", "--limit", "0"],
            "polymm refresh-markets: argument --limit: 0 must be at least 1",
        ),
        *(
            (
                ["run-market-maker", "--config", "c", f"--duration={value}"],
                f"polymm run-market-maker: argument --duration: {value!r} is not between 0 and",
            )
            for value in ("inf", "-inf", "nan", "-1", "1e20")
        ),
        (
            ["run-market-maker", "--config", "c", "--duration", "soon"],
            "polymm run-market-maker: argument --duration: 'soon' is not a number of seconds",
        ),
        (
            ["run-market-maker", "--config", "c", "--mode", "yolo"],
            "polymm run-market-maker: argument --mode: invalid choice: 'yolo'",
        ),
    ],
)
def test_argument_errors_are_one_line_and_exit_2(capsys, argv, expected):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)

    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.count("\n") == 1 and err.startswith(expected), err
    assert err.rstrip().endswith("--help)")


def test_main_restores_the_default_recursion_limit_after_building_the_parser(capsys):
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)  # as an earlier import of py_ecc leaves it
    try:
        with pytest.raises(SystemExit):
            main(["--help"])
        assert sys.getrecursionlimit() == DEFAULT_RECURSION_LIMIT
    finally:
        sys.setrecursionlimit(before)


@pytest.mark.parametrize(
    ("flag", "ops", "expected"),
    [
        (["--state-dir", "/dev/null/x"], "", "--state-dir: cannot write to /dev/null/x: Not a directory"),
        ([], "state_dir: /dev/null/x", "CONFIG: ops.state_dir: cannot write to /dev/null/x: Not a directory"),
    ],
    ids=["flag", "config"],
)
def test_a_state_dir_that_cannot_be_written_is_one_line_and_exit_2(tmp_path, capsys, flag, ops, expected):
    cfg = tmp_path / "mm.yaml"
    cfg.write_text(f"ops:\n  {ops}\n" if ops else "strategy: market_maker\n")

    code = main(["run-market-maker", "--config", str(cfg), "--gamma-url", "http://127.0.0.1:9", *flag])

    err = capsys.readouterr().err
    assert code == 2
    assert err == expected.replace("CONFIG", str(cfg)) + "\n"


def test_a_log_path_that_cannot_be_written_is_one_line_and_exit_2(tmp_path, capsys):
    cfg = tmp_path / "mm.yaml"
    cfg.write_text(f"ops:\n  state_dir: {tmp_path / 'state'}\n  log_path: /dev/null/x/polymm.log\n")

    code = main(["run-market-maker", "--config", str(cfg), "--gamma-url", "http://127.0.0.1:9"])

    err = capsys.readouterr().err
    assert code == 2
    assert err == f"{cfg}: ops.log_path: cannot write to /dev/null/x/polymm.log: Not a directory\n"
