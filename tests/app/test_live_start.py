"""run-market-maker refuses to start on bad credentials or without its services: one line, no order sent.

Against the exchange emulator on 127.0.0.1: API credentials the venue does not know, credentials of
another wallet than the private key's, partial or malformed credentials, a key that is not a key,
the CLOB or Gamma unreachable. Bad input exits 2, an unreachable service exits 1; the venue never
sees an order request, and the process keeps Python's default recursion limit after importing the
venue SDK.
"""

from __future__ import annotations

import base64
import os
import secrets
import socket
import sys
import time
import uuid
from pathlib import Path

import pytest
from eth_account import Account

from adapters.market_cache import CacheEntry, write_markets_file
from adapters.polymarket.sdk import environment_for
from adapters.polymarket.secrets import Secret, build_clob_client
from app.cli import main
from app.process import DEFAULT_RECURSION_LIMIT
from core.selection import MarketRecord
from core.units import QTY_ONE
from emulator import Emulator

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

KEY_FLAGS = "--key-file / POLYMM_PRIVATE_KEY"  # how app.live names where the key comes from
ENV = (
    "POLYMM_PRIVATE_KEY",
    "POLYMM_PRIVATE_KEY_FILE",
    "POLYMM_API_KEY",
    "POLYMM_API_SECRET",
    "POLYMM_API_PASSPHRASE",
)


@pytest.fixture(scope="module")
def emu():
    with Emulator("default", seed=4, port=0) as e:
        yield e


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    before = sys.getrecursionlimit()
    yield
    sys.setrecursionlimit(before)


def live_config(tmp_path: Path) -> Path:
    text = Path("configs/market_maker.yaml").read_text().replace("local_state/", f"{tmp_path}/local_state/")
    path = tmp_path / "live.yaml"
    path.write_text(text.replace("dry_run: true", "dry_run: false"))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_live(tmp_path: Path, emu: Emulator, capsys, *, clob_url: str | None = None) -> tuple[int, str, str]:
    code = main(
        [
            "run-market-maker",
            "--config",
            str(live_config(tmp_path)),
            "--mode",
            "live",
            "--duration",
            "5",
            "--clob-url",
            clob_url or emu.clob_url,
            "--ws-url",
            emu.ws_market_url,
            "--gamma-url",
            emu.gamma_url,
        ]
    )
    out, err = capsys.readouterr()
    return code, out, err


def order_requests(emu: Emulator) -> int:
    return int(emu.status()["requests"].get("total", 0))


def random_credentials() -> dict[str, str]:
    return {
        "POLYMM_API_KEY": str(uuid.uuid4()),
        "POLYMM_API_SECRET": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "POLYMM_API_PASSPHRASE": secrets.token_hex(32),
    }


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_api_credentials_the_venue_does_not_know_exit_2_before_any_order(emu, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("POLYMM_PRIVATE_KEY", Account.create().key.hex())
    for name, value in random_credentials().items():
        monkeypatch.setenv(name, value)
    before = order_requests(emu)

    code, out, err = run_live(tmp_path, emu, capsys)

    assert code == 2
    line = one_line(err)
    assert line.startswith(f"--mode live: {emu.clob_url} refused the credentials (Unauthorized"), line
    assert "check POLYMM_API_KEY, POLYMM_API_SECRET, POLYMM_API_PASSPHRASE" in line
    assert order_requests(emu) == before
    assert "LIVE trading" not in out
    assert sys.getrecursionlimit() == DEFAULT_RECURSION_LIMIT  # after importing polymarket-client


def test_credentials_of_another_wallet_than_the_private_key_exit_2(emu, tmp_path, capsys, monkeypatch):
    owner = Account.create().key.hex()
    client, creds = build_clob_client(environment_for(emu.clob_url), Secret(owner))  # the owner's, real
    client.close()
    monkeypatch.setenv("POLYMM_API_KEY", creds.api_key)
    monkeypatch.setenv("POLYMM_API_SECRET", creds.secret.reveal())
    monkeypatch.setenv("POLYMM_API_PASSPHRASE", creds.passphrase.reveal())
    monkeypatch.setenv("POLYMM_PRIVATE_KEY", Account.create().key.hex())  # ...with the wrong key
    before = order_requests(emu)

    code, _out, err = run_live(tmp_path, emu, capsys)

    assert code == 2
    assert "refused the credentials" in one_line(err)
    assert creds.secret.reveal() not in err and creds.passphrase.reveal() not in err
    assert order_requests(emu) == before


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, f"{KEY_FLAGS}: set POLYMM_PRIVATE_KEY or POLYMM_PRIVATE_KEY_FILE"),
        ({"POLYMM_PRIVATE_KEY": "0x1234"}, f"{KEY_FLAGS}: POLYMM_PRIVATE_KEY: not a 32-byte hex private key"),
        ({"POLYMM_PRIVATE_KEY": "0x" + "00" * 32}, f"{KEY_FLAGS}: POLYMM_PRIVATE_KEY: not a valid secp256k1"),
        (
            {"POLYMM_PRIVATE_KEY": "KEY", "POLYMM_API_KEY": "k-1"},
            "--mode live: POLYMM_API_SECRET and POLYMM_API_PASSPHRASE not set",
        ),
        (
            {"POLYMM_PRIVATE_KEY": "KEY", "POLYMM_API_KEY": "k", "POLYMM_API_SECRET": "abc",
             "POLYMM_API_PASSPHRASE": "p"},
            "--mode live: POLYMM_API_SECRET: not URL-safe base64",
        ),
        ({"POLYMM_PRIVATE_KEY_FILE": "/nowhere/key"}, f"{KEY_FLAGS}: POLYMM_PRIVATE_KEY_FILE: cannot read"),
    ],
    ids=["no-key", "short-key", "zero-key", "partial-creds", "bad-secret", "no-key-file"],
)  # fmt: skip
def test_missing_partial_or_malformed_secrets_exit_2_with_one_line(
    emu, tmp_path, capsys, monkeypatch, env, expected
):
    key = Account.create().key.hex()
    for name, value in env.items():
        monkeypatch.setenv(name, key if value == "KEY" else value)
    before = order_requests(emu)

    code, _out, err = run_live(tmp_path, emu, capsys)

    assert code == 2
    assert one_line(err).startswith(expected), err
    assert key.removeprefix("0x") not in err
    assert order_requests(emu) == before


def test_an_unreachable_clob_at_start_exits_1_with_one_line(emu, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("POLYMM_PRIVATE_KEY", Account.create().key.hex())
    nowhere = f"http://127.0.0.1:{free_port()}"

    code, _out, err = run_live(tmp_path, emu, capsys, clob_url=nowhere)

    assert code == 1
    line = one_line(err)
    assert line.startswith(f"polymm run-market-maker: cannot start live trading on {nowhere}: "), line


def test_gamma_unreachable_at_start_exits_1_with_one_line(tmp_path, capsys):
    cfg = tmp_path / "mm.yaml"
    cfg.write_text(
        Path("configs/market_maker.yaml").read_text().replace("local_state/", f"{tmp_path}/local_state/")
    )
    nowhere = f"http://127.0.0.1:{free_port()}"

    code = main(["run-market-maker", "--config", str(cfg), "--gamma-url", nowhere, "--gamma-retries", "0"])

    _out, err = capsys.readouterr()
    assert code == 1
    line = one_line(err)
    assert line.startswith("polymm run-market-maker: cannot select markets: Gamma API at "), line
    assert "unavailable" in line and nowhere in line


def routed_file(tmp_path: Path, emu: Emulator, records: list[MarketRecord]) -> None:
    """A fresh selected_markets.json from this emulator's Gamma, as route-markets writes it."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    write_markets_file(
        tmp_path / "local_state" / "market_maker" / "selected_markets.json",
        kind="selected_markets",
        strategy="market_maker",
        entries=[CacheEntry(market=r) for r in records],
        generated_at=now,
        source={"gamma_url": emu.gamma_url, "fetched_at": now},
    )


def record(emu: Emulator, index: int, version: str) -> MarketRecord:
    m = emu.venue.market_ids()[index]
    return MarketRecord(
        market_id=str(index),
        condition_id=m["market"],
        token_ids=(m["yes_token"], m["no_token"]),
        version=version,  # type: ignore[arg-type]
        tick_px=100,
        min_qty=5 * QTY_ONE,
    )


def test_a_market_whose_ids_disagree_with_its_gamma_version_is_left_out_with_one_line(
    emu, tmp_path, capsys, monkeypatch
):
    # Gamma says v2, but the ids are CTF token ids: the official client would sign them for the V1
    # exchange. That market is refused, the other one trades.
    monkeypatch.setenv("POLYMM_PRIVATE_KEY", Account.create().key.hex())
    bad, good = record(emu, 0, "v2"), record(emu, 1, "v1")
    routed_file(tmp_path, emu, [bad, good])

    code, out, _err = run_live(tmp_path, emu, capsys)

    refused = [line for line in out.splitlines() if "refused:" in line]
    assert code == 0, out
    assert len(refused) == 1 and bad.condition_id in refused[0]
    assert "Gamma says version v2 but its YES id" in refused[0] and refused[0].endswith("not traded")
    assert "(1 markets: 1 V1, 0 Protocol V2)" in out


def test_no_tradable_market_left_exits_2_with_one_line(emu, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("POLYMM_PRIVATE_KEY", Account.create().key.hex())
    routed_file(tmp_path, emu, [record(emu, 0, "v2")])
    before = order_requests(emu)

    code, out, err = run_live(tmp_path, emu, capsys)

    assert code == 2
    assert one_line(err).startswith("live: none of the 1 markets can be traded"), err
    assert "refused:" in out and "LIVE trading" not in out
    assert order_requests(emu) == before
