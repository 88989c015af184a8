"""Secrets load from the environment or a file and never print."""

from __future__ import annotations

import base64
import logging
import os
import pickle
import secrets
import uuid
from collections.abc import Iterator

import pytest
from eth_account import Account

from adapters.polymarket import secrets as secrets_mod
from adapters.polymarket.errors import AuthFailed, TransportFailed
from adapters.polymarket.sdk import environment_for
from adapters.polymarket.secrets import (
    ApiCredentials,
    Secret,
    SecretError,
    build_clob_client,
    install_log_redaction,
    load_api_credentials,
    load_private_key,
    redact,
    verify_credentials,
)
from emulator import Emulator

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")

KEY = Account.create().key.hex()
SECRET = "c2VjcmV0LXZhbHVlLW5vdC10by1iZS1sb2dnZWQtMTIzNA=="
PASSPHRASE = "passphrase-not-to-be-logged"


def test_private_key_from_env_does_not_print():
    key = load_private_key({"POLYMM_PRIVATE_KEY": KEY})

    assert key.reveal() == KEY
    assert KEY not in repr(key) and KEY not in str(key) and KEY not in f"{key}"
    assert repr(key) == "Secret('***')"


def test_private_key_from_a_file_wins_and_warns_when_readable_by_others(tmp_path, caplog):
    path = tmp_path / "key"
    path.write_text(f"0x{KEY.removeprefix('0x')}\n")
    os.chmod(path, 0o644)

    key = load_private_key({"POLYMM_PRIVATE_KEY_FILE": str(path), "POLYMM_PRIVATE_KEY": "ignored"})

    assert key.reveal() == f"0x{KEY.removeprefix('0x')}"
    assert "readable by other users" in caplog.text
    assert KEY.removeprefix("0x") not in caplog.text


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({}, "set POLYMM_PRIVATE_KEY or POLYMM_PRIVATE_KEY_FILE"),
        ({"POLYMM_PRIVATE_KEY": "0x1234"}, "not a 32-byte hex private key"),
        ({"POLYMM_PRIVATE_KEY_FILE": "/nonexistent/key"}, "cannot read"),
    ],
)
def test_private_key_errors_never_contain_the_value(env, match):
    with pytest.raises(SecretError, match=match) as info:
        load_private_key(env)

    assert "1234" not in str(info.value)


def test_api_credentials_from_env_all_or_nothing():
    env = {"POLYMM_API_KEY": "k-1234", "POLYMM_API_SECRET": SECRET, "POLYMM_API_PASSPHRASE": PASSPHRASE}

    creds = load_api_credentials(env)

    assert creds is not None
    sdk_creds = creds.to_sdk()
    assert (sdk_creds.key, sdk_creds.secret, sdk_creds.passphrase) == ("k-1234", SECRET, PASSPHRASE)
    assert SECRET not in repr(sdk_creds) and PASSPHRASE not in repr(sdk_creds)
    assert SECRET not in repr(creds) and PASSPHRASE not in repr(creds)
    assert load_api_credentials({}) is None
    with pytest.raises(SecretError, match="or none"):
        load_api_credentials({"POLYMM_API_KEY": "k"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"POLYMM_API_KEY": "k-1234"},
            "POLYMM_API_SECRET and POLYMM_API_PASSPHRASE not set: set all of POLYMM_API_KEY",
        ),
        (
            {"POLYMM_API_SECRET": SECRET, "POLYMM_API_PASSPHRASE": PASSPHRASE},
            "POLYMM_API_KEY not set: set all of",
        ),
        (
            {"POLYMM_API_KEY": "k-1234", "POLYMM_API_SECRET": "  ", "POLYMM_API_PASSPHRASE": PASSPHRASE},
            "POLYMM_API_SECRET not set",
        ),
        (
            {
                "POLYMM_API_KEY": "k-1",
                "POLYMM_API_SECRET": "not base64!",
                "POLYMM_API_PASSPHRASE": PASSPHRASE,
            },
            "POLYMM_API_SECRET: must be printable ASCII without spaces",
        ),
        (
            {"POLYMM_API_KEY": "k-1234", "POLYMM_API_SECRET": "abc", "POLYMM_API_PASSPHRASE": PASSPHRASE},
            "POLYMM_API_SECRET: not URL-safe base64",
        ),
        (
            {"POLYMM_API_KEY": "k-1234", "POLYMM_API_SECRET": "!!!!", "POLYMM_API_PASSPHRASE": PASSPHRASE},
            "POLYMM_API_SECRET: not URL-safe base64",
        ),
        (
            {"POLYMM_API_KEY": "kéy", "POLYMM_API_SECRET": SECRET, "POLYMM_API_PASSPHRASE": PASSPHRASE},
            "POLYMM_API_KEY: must be printable ASCII without spaces",
        ),
        (
            {"POLYMM_API_KEY": "k" * 300, "POLYMM_API_SECRET": SECRET, "POLYMM_API_PASSPHRASE": PASSPHRASE},
            "POLYMM_API_KEY: longer than 256 characters",
        ),
        (
            {"POLYMM_API_KEY": "k-1234", "POLYMM_API_SECRET": SECRET, "POLYMM_API_PASSPHRASE": "a\nb"},
            "POLYMM_API_PASSPHRASE: must be printable ASCII without spaces",
        ),
    ],
    ids=[
        "only-key",
        "no-key",
        "blank-secret",
        "secret-space",
        "secret-padding",
        "secret-chars",
        "key-unicode",
        "key-long",
        "passphrase-newline",
    ],
)
def test_partial_or_malformed_api_credentials_name_the_variable_never_the_value(env, message):
    with pytest.raises(SecretError) as info:
        load_api_credentials(env)

    assert str(info.value).startswith(message), info.value
    for value in env.values():
        if len(value.strip()) >= 4:
            assert value not in str(info.value)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("0x" + "11" * 31, "not a 32-byte hex private key"),
        ("0x" + "11" * 33, "not a 32-byte hex private key"),
        ("0x" + "zz" * 32, "not a 32-byte hex private key"),
        ("0x" + "00" * 32, "not a valid secp256k1 private key"),
        ("0x" + "ff" * 32, "not a valid secp256k1 private key"),
        (
            "0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141",
            "not a valid secp256k1 private key",
        ),
    ],
    ids=["short", "long", "not-hex", "zero", "past-order", "order"],
)
def test_a_private_key_of_wrong_length_or_out_of_range_is_refused(key, message):
    with pytest.raises(SecretError, match=message) as info:
        load_private_key({"POLYMM_PRIVATE_KEY": key})

    assert key.removeprefix("0x") not in str(info.value)


def test_the_largest_valid_private_key_is_accepted():
    n_minus_1 = "0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364140"

    assert load_private_key({"POLYMM_PRIVATE_KEY": n_minus_1}).reveal() == n_minus_1


def test_secrets_are_not_picklable():
    with pytest.raises(TypeError):
        pickle.dumps(Secret("x"))
    with pytest.raises(TypeError):
        pickle.dumps(ApiCredentials("k", Secret("s"), Secret("p")))


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator("default", seed=5, port=0) as e:
        yield e


def random_credentials() -> ApiCredentials:
    return ApiCredentials(
        str(uuid.uuid4()),
        Secret(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()),
        Secret(secrets.token_hex(16)),
    )


def test_the_client_derives_credentials_for_the_keys_own_address_without_logging_them(emu, caplog):
    caplog.set_level(logging.DEBUG)
    key = Account.create().key.hex()

    client, creds = build_clob_client(environment_for(emu.clob_url), Secret(key))
    try:
        assert client.wallet == client.signer == Account.from_key(key).address
        assert client.wallet_type == "EOA"  # signature type 0: the relayer is never asked
        assert client.credentials.key == creds.api_key
        assert emu.keys.keys_of(client.wallet) == (creds.api_key,)
    finally:
        client.close()
    for value in (creds.secret.reveal(), creds.passphrase.reveal(), key, key.removeprefix("0x")):
        assert value not in caplog.text
    assert f"{creds.api_key[:4]}…" in caplog.text  # the key id prefix only


def test_given_credentials_are_verified_and_used_as_they_are(emu):
    key = Secret(Account.create().key.hex())
    first, creds = build_clob_client(environment_for(emu.clob_url), key)
    first.close()

    client, used = build_clob_client(environment_for(emu.clob_url), key, creds)
    try:
        assert used is creds and client.credentials.key == creds.api_key
    finally:
        client.close()


def test_credentials_the_venue_refuses_stop_before_the_sdk_can_replace_them(emu):
    key = Secret(Account.create().key.hex())
    address = Account.from_key(key.reveal()).address

    with pytest.raises(AuthFailed, match=r"^Unauthorized/Invalid api key$"):
        build_clob_client(environment_for(emu.clob_url), key, random_credentials())

    assert emu.keys.keys_of(address) == ()  # the SDK never got to create or derive new ones


def test_a_replacement_by_the_sdk_is_detected_and_refused(emu, monkeypatch):
    # Should the venue accept our check and refuse the SDK's a moment later, the SDK would derive new
    # credentials silently; the run must not trade under credentials nobody configured.
    monkeypatch.setattr(secrets_mod, "verify_credentials", lambda *a, **k: None)
    key = Secret(Account.create().key.hex())

    with pytest.raises(AuthFailed, match="refused them when the client was created"):
        build_clob_client(environment_for(emu.clob_url), key, random_credentials())


def test_the_credential_check_names_a_key_the_venue_does_not_list_and_an_unreachable_venue(emu):
    key = Secret(Account.create().key.hex())
    client, creds = build_clob_client(environment_for(emu.clob_url), key)
    client.close()
    address = Account.from_key(key.reveal()).address

    verify_credentials(emu.clob_url, address, creds)  # accepted
    with pytest.raises(AuthFailed):
        verify_credentials(emu.clob_url, Account.create().address, creds)  # another address
    with pytest.raises(TransportFailed):
        verify_credentials("http://127.0.0.1:9", address, creds)


def test_log_redaction_scrubs_known_values(caplog):
    caplog.set_level(logging.INFO)
    uninstall = install_log_redaction([Secret(SECRET), PASSPHRASE])
    try:
        logging.getLogger("third.party").info("headers %s", {"POLY_PASSPHRASE": PASSPHRASE, "s": SECRET})
        logging.getLogger("third.party").info("nothing secret %d", 42)
    finally:
        uninstall()
    logging.getLogger("third.party").info("after %s", "uninstall")

    assert SECRET not in caplog.text and PASSPHRASE not in caplog.text
    assert "nothing secret 42" in caplog.text
    assert "after uninstall" in caplog.text
    assert redact(f"a{SECRET}b", [SECRET]) == "a***b"
