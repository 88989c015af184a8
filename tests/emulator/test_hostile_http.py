"""Malformed framing and hostile JSON: a clear 400 (or 413), never a hang, a drop or a traceback."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import httpx
import pytest

from emulator import Emulator, ManualClock
from tests.emulator.conftest import make_scenario


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(make_scenario(body_timeout_ms=200), port=0, clock=ManualClock()) as e:
        yield e


def _raw(emu: Emulator, head: str, body: bytes = b"") -> tuple[int, bytes]:
    # One request written by hand; returns the status and the reply's body.
    with socket.create_connection((emu.host, emu.port), timeout=5) as s:
        s.sendall(head.encode() + b"\r\n\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            assert chunk, f"connection closed without a reply: {data!r}"
            data += chunk
        header, _, rest = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in header.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        while len(rest) < length:
            chunk = s.recv(65536)
            assert chunk
            rest += chunk
    return int(header.split(b" ")[1]), rest


@pytest.mark.parametrize(
    ("length", "body", "status"),
    [
        ("abc", b"{}", 400),
        ("-1", b"{}", 400),
        ("+2", b"{}", 400),
        ("1e3", b"{}", 400),
        ("100", b"{}", 400),  # larger than the body: answered once body_timeout_ms has passed
        ("99999999999999999999999", b"{}", 413),
        (str(2 << 20), b"{}", 413),
    ],
)
def test_a_malformed_content_length_is_answered_not_waited_for(
    emu: Emulator, length: str, body: bytes, status: int
):
    got, reply = _raw(emu, f"POST /emulator/take HTTP/1.1\r\nHost: x\r\nContent-Length: {length}", body)

    assert got == status
    assert b'"error"' in reply


def test_conflicting_lengths_and_chunked_bodies_are_refused(emu: Emulator):
    twice = _raw(emu, "POST /books HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3", b"[]x")
    chunked = _raw(
        emu, "POST /books HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked", b"2\r\n[]\r\n0\r\n\r\n"
    )

    assert twice[0] == chunked[0] == 400


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
        b"[" * 40 + b"]" * 40,
        b"1e999999",
        b"1" + b"0" * 5_000,
        b'[{"token_id": 1' + b"0" * 5_000 + b"}]",
        b"\xff\xfe garbage",
    ],
)
def test_hostile_json_is_a_400(emu: Emulator, body: bytes, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.ERROR)

    r = httpx.post(f"{emu.clob_url}/books", content=body, timeout=5)

    assert r.status_code == 400
    assert "error" in r.json()
    assert not [x for x in caplog.records if x.exc_info]  # no traceback logged


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/emulator/take", {"market": "quiet-market", "side": "BUY", "size": "1" + "0" * 400}),
        ("/emulator/take", {"market": "quiet-market", "side": "BUY", "amount": 1e308}),
        ("/emulator/take", {"market": "quiet-market", "side": "SELL", "size": "-5"}),
        ("/emulator/clock", {"advance_ms": 10**30}),
        ("/emulator/fail-trades", {"next": 1e300}),
        ("/emulator/settings", {"heartbeat_timeout_ms": "soon"}),
        ("/emulator/faults", {"kind": "ws_freeze", "duration_ms": -1}),
        ("/emulator/rate-limits", {"retry_after_s": 10**40}),
    ],
)
def test_absurd_numbers_in_control_requests_are_a_400(emu: Emulator, path: str, body: dict):
    r = httpx.post(f"{emu.clob_url}{path}", json=body, timeout=5)

    assert r.status_code == 400, r.text
    assert httpx.get(f"{emu.clob_url}/ok", timeout=5).status_code == 200  # still serving
