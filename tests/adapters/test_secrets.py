"""Secrets load from the environment or a file and never print."""

from __future__ import annotations

import logging
import os
import pickle

import pytest
from eth_account import Account
from py_clob_client_v2.clob_types import ApiCreds

from adapters.polymarket.secrets import (
    ApiCredentials,
    Secret,
    SecretError,
    build_clob_client,
    install_log_redaction,
    load_api_credentials,
    load_private_key,
    redact,
)

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
    assert creds.to_clob().api_secret == SECRET
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


class FakeClient:
    def __init__(self, host, chain_id, key, signature_type, funder, retry_on_error):
        self.host, self.key, self.retry_on_error = host, key, retry_on_error
        self.creds = None

    def create_or_derive_api_key(self):
        return ApiCreds(api_key="derived-key-1", api_secret=SECRET, api_passphrase=PASSPHRASE)

    def set_api_creds(self, creds):
        self.creds = creds


def test_build_clob_client_derives_credentials_without_logging_them(caplog):
    caplog.set_level(logging.DEBUG)

    client, creds = build_clob_client("http://venue.test", Secret(KEY), client_factory=FakeClient)

    assert client.key == KEY and client.retry_on_error is False
    assert client.creds.api_secret == SECRET
    assert creds.api_key == "derived-key-1"
    assert SECRET not in caplog.text and PASSPHRASE not in caplog.text and KEY not in caplog.text
    assert "deri…" in caplog.text  # the key id prefix only


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
