"""The private key and API credentials: loaded from the environment or a file, never shown.

* The private key comes from ``POLYMM_PRIVATE_KEY`` or from the file named by
  ``POLYMM_PRIVATE_KEY_FILE`` (one hex line; a warning if other users can read it).
* API credentials come from ``POLYMM_API_KEY``/``POLYMM_API_SECRET``/``POLYMM_API_PASSPHRASE``, or are
  derived with the key when the SDK's client is created (L1: ``POST /auth/api-key``, falling back to
  ``GET /auth/derive-api-key``).
* ``build_clob_client`` creates the venue SDK's ``SecureClient`` for the key's own address
  (``wallet=`` the EOA: signature type 0, and the SDK never asks the relayer for a deposit wallet).
  Given credentials are checked first by ``verify_credentials`` (one authenticated read,
  ``GET /auth/api-keys``, signed here): the SDK, on a 401, silently creates or derives *new*
  credentials instead, so a run with bad credentials would quietly trade under other ones. A
  replacement that still happens (a refusal between our check and the SDK's) is detected and refused.

Every value is checked before use (a key of the wrong length, not hex or outside the curve's range;
a secret that is not base64; a key or passphrase that could not go in an HTTP header): the error
names the variable, never the value.

``Secret`` and ``ApiCredentials`` print as ``Secret('***')``; the raw value is only returned by
``reveal()``, at the places that need it (the client, the credential check's HMAC and the user-channel
subscribe frame). ``install_log_redaction`` is a process-wide backstop that scrubs known secret values
out of every log record, and ``sdk.guard_transport_loggers`` keeps the HTTP/2 header encoder (which
logs header values at DEBUG) below DEBUG.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx

from adapters.polymarket import sdk
from adapters.polymarket.errors import (
    AuthFailed,
    BadResponse,
    RequestRejected,
    TransportFailed,
    VenueUnavailable,
    error_message,
    to_polymarket_error,
)

if TYPE_CHECKING:
    from polymarket import ApiKeyCreds, Environment, SecureClient

logger = logging.getLogger(__name__)

__all__ = [
    "ENV_API_KEY",
    "ENV_API_PASSPHRASE",
    "ENV_API_SECRET",
    "ENV_PRIVATE_KEY",
    "ENV_PRIVATE_KEY_FILE",
    "ApiCredentials",
    "Secret",
    "SecretError",
    "build_clob_client",
    "install_log_redaction",
    "load_api_credentials",
    "load_private_key",
    "redact",
    "verify_credentials",
]

ENV_PRIVATE_KEY: Final = "POLYMM_PRIVATE_KEY"
ENV_PRIVATE_KEY_FILE: Final = "POLYMM_PRIVATE_KEY_FILE"
ENV_API_KEY: Final = "POLYMM_API_KEY"
ENV_API_SECRET: Final = "POLYMM_API_SECRET"  # noqa: S105  # a variable name, not a value
ENV_API_PASSPHRASE: Final = "POLYMM_API_PASSPHRASE"  # noqa: S105  # a variable name, not a value
MASK: Final = "***"
#: secp256k1's group order: a private key is an integer in [1, n - 1].
_SECP256K1_N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_MAX_CREDENTIAL_CHARS: Final = 256


class SecretError(ValueError):
    """A secret is missing or malformed (the message never contains the value)."""


class Secret:
    """A string that does not print; ``reveal()`` returns it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The raw value (pass it on, never log it)."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:
        raise TypeError("secrets are not picklable")


class ApiCredentials:
    """L2 API credentials; prints only a prefix of the key id."""

    __slots__ = ("api_key", "passphrase", "secret")

    def __init__(self, api_key: str, secret: Secret, passphrase: Secret) -> None:
        self.api_key = api_key
        self.secret = secret
        self.passphrase = passphrase

    def to_sdk(self) -> ApiKeyCreds:
        """The SDK's ``ApiKeyCreds`` (its repr is redacted; hand it over, do not keep it)."""
        from polymarket import ApiKeyCreds  # noqa: PLC0415

        return ApiKeyCreds(key=self.api_key, secret=self.secret.reveal(), passphrase=self.passphrase.reveal())

    def ws_auth(self) -> dict[str, str]:
        """The ``auth`` object of the user-channel subscribe frame."""
        return {
            "apiKey": self.api_key,
            "secret": self.secret.reveal(),
            "passphrase": self.passphrase.reveal(),
        }

    def secret_values(self) -> tuple[str, str]:
        """The values to scrub from logs."""
        return (self.secret.reveal(), self.passphrase.reveal())

    def __repr__(self) -> str:
        return f"ApiCredentials(api_key='{self.api_key[:4]}…', secret={self.secret!r}, passphrase={MASK!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("credentials are not picklable")


def _check_key(text: str, source: str) -> Secret:
    key = text.strip()
    hex_part = key.removeprefix("0x")
    if len(hex_part) != 64 or any(c not in "0123456789abcdefABCDEF" for c in hex_part):
        raise SecretError(f"{source}: not a 32-byte hex private key (64 hex digits, 0x optional)")
    if not 0 < int(hex_part, 16) < _SECP256K1_N:
        raise SecretError(f"{source}: not a valid secp256k1 private key (zero or past the curve order)")
    return Secret(key)


def _check_header_value(name: str, value: str) -> None:
    # Sent as HTTP header values (POLY_API_KEY, POLY_PASSPHRASE): printable ASCII without spaces.
    if len(value) > _MAX_CREDENTIAL_CHARS:
        raise SecretError(f"{name}: longer than {_MAX_CREDENTIAL_CHARS} characters")
    if not value.isascii() or not value.isprintable() or any(c.isspace() for c in value):
        raise SecretError(f"{name}: must be printable ASCII without spaces")


def _check_secret(name: str, value: str) -> None:
    # The HMAC key is the URL-safe base64 decoding of the secret (the venue's L2 signature).
    _check_header_value(name, value)
    try:
        raw = base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise SecretError(f"{name}: not URL-safe base64") from None
    if not raw:
        raise SecretError(f"{name}: decodes to nothing")


def load_private_key(env: Mapping[str, str] | None = None, *, key_file: str | Path | None = None) -> Secret:
    """The signer's private key from ``key_file``, ``POLYMM_PRIVATE_KEY`` or ``POLYMM_PRIVATE_KEY_FILE``.

    Raises:
        SecretError: None is set, the file is unreadable, or the value is not a 32-byte hex key.
    """
    env = os.environ if env is None else env
    path = key_file or env.get(ENV_PRIVATE_KEY_FILE)
    if path:
        p = Path(path)
        try:
            mode = p.stat().st_mode
            text = p.read_text()
        except OSError as exc:
            raise SecretError(f"{ENV_PRIVATE_KEY_FILE}: cannot read {p}: {exc.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            logger.warning("private key file %s is readable by other users (chmod 600 it)", p)
        return _check_key(text, str(p))
    value = env.get(ENV_PRIVATE_KEY)
    if value:
        return _check_key(value, ENV_PRIVATE_KEY)
    raise SecretError(f"set {ENV_PRIVATE_KEY} or {ENV_PRIVATE_KEY_FILE}")


def load_api_credentials(env: Mapping[str, str] | None = None) -> ApiCredentials | None:
    """API credentials from the environment; None when none are set (derive them instead).

    Raises:
        SecretError: Only some of the three variables are set.
    """
    env = os.environ if env is None else env
    names = (ENV_API_KEY, ENV_API_SECRET, ENV_API_PASSPHRASE)
    values = [(env.get(n) or "").strip() for n in names]
    if not any(values):
        return None
    missing = [n for n, v in zip(names, values, strict=True) if not v]
    if missing:
        raise SecretError(
            f"{' and '.join(missing)} not set: set all of {ENV_API_KEY}, {ENV_API_SECRET} and "
            f"{ENV_API_PASSPHRASE}, or none (to derive them with the private key)"
        )
    key, secret, passphrase = values
    _check_header_value(ENV_API_KEY, key)
    _check_secret(ENV_API_SECRET, secret)
    _check_header_value(ENV_API_PASSPHRASE, passphrase)
    return ApiCredentials(key, Secret(secret), Secret(passphrase))


def _l2_headers(address: str, creds: ApiCredentials, method: str, path: str, now_s: int) -> dict[str, str]:
    # The venue's L2 authentication: HMAC-SHA256 of "<timestamp><METHOD><path>" keyed by the
    # URL-safe base64 decoding of the secret, URL-safe base64 encoded.
    secret = creds.secret.reveal()
    key = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    digest = hmac.new(key, f"{now_s}{method}{path}".encode(), hashlib.sha256).digest()
    return {
        "POLY_ADDRESS": address,
        "POLY_API_KEY": creds.api_key,
        "POLY_PASSPHRASE": creds.passphrase.reveal(),
        "POLY_SIGNATURE": base64.urlsafe_b64encode(digest).decode(),
        "POLY_TIMESTAMP": str(now_s),
    }


def verify_credentials(
    clob_url: str,
    address: str,
    creds: ApiCredentials,
    *,
    http: httpx.Client | None = None,
    now_s: Callable[[], float] = time.time,
) -> None:
    """Ask the venue once whether it accepts ``creds`` for ``address`` (``GET /auth/api-keys``, L2).

    The venue checks the API key, the passphrase, the HMAC made with the secret, and that the
    address owns the key; the key must also be among those it lists (the SDK's own test).

    Raises:
        AuthFailed: 401 or 403, or the key is not listed: the credentials (or the private key they
            belong to) are refused.
        PolymarketError: the venue could not be asked (no reply, 5xx...) or answered something else.
    """
    path = "/auth/api-keys"
    client = http or httpx.Client(timeout=10.0)
    try:
        resp = client.get(
            clob_url.rstrip("/") + path, headers=_l2_headers(address, creds, "GET", path, int(now_s()))
        )
    except httpx.HTTPError as exc:
        raise TransportFailed(error_message(f"{type(exc).__name__}: {exc}")) from None
    finally:
        if http is None:
            client.close()
    try:
        body: Any = resp.json()
    except ValueError:
        body = resp.text[:1200]
    if resp.status_code in (401, 403):
        raise AuthFailed(error_message(body), resp.status_code)
    if resp.status_code == 425 or resp.status_code >= 500:
        raise VenueUnavailable(error_message(body), resp.status_code)
    if resp.status_code != 200:
        raise RequestRejected(error_message(body), resp.status_code)
    keys = body.get("apiKeys") if isinstance(body, dict) else None
    if not isinstance(keys, list):
        raise BadResponse(f"GET {path}: expected {{apiKeys: [...]}}, got {error_message(body)}")
    if creds.api_key not in keys:
        raise AuthFailed("the venue does not list this API key for the private key's address", 401)


def build_clob_client(
    environment: Environment,
    key: Secret,
    creds: ApiCredentials | None = None,
    *,
    rate_limits: Callable[[Any], None] | None = None,
) -> tuple[SecureClient, ApiCredentials]:
    """The venue SDK's ``SecureClient`` for ``key``'s own address, and the credentials it uses.

    Without ``creds`` the SDK derives them (one or two HTTP calls). With ``creds`` they are verified
    first (``verify_credentials``); the SDK checks them again and, should it find them refused,
    would replace them silently: then the client is closed and ``AuthFailed`` raised.

    Args:
        environment: Where the venue is (``sdk.environment_for``).
        key: The signer's private key.
        creds: API credentials, or None to derive them.
        rate_limits: The SDK's ``on_rate_limit_update`` listener (``errors.RateLimitListener``).

    Raises:
        AuthFailed: The venue refused the credentials.
        PolymarketError: The venue could not be reached or answered something unusable.
    """
    from eth_account import Account  # noqa: PLC0415
    from polymarket import SecureClient  # noqa: PLC0415

    sdk.guard_transport_loggers()
    address = str(Account.from_key(key.reveal()).address)
    if creds is not None:
        verify_credentials(sdk.clob_url_of(environment), address, creds)
    try:
        client = SecureClient.create(
            private_key=key.reveal(),
            wallet=address,
            environment=environment,
            credentials=creds.to_sdk() if creds is not None else None,
            on_rate_limit_update=rate_limits,
        )
    except Exception as exc:
        raise to_polymarket_error(exc) from None
    used = client.credentials
    if creds is not None and used.key != creds.api_key:
        client.close()
        raise AuthFailed("the venue refused them when the client was created (new ones were issued)", 401)
    if creds is None:
        if not used.key or not used.secret or not used.passphrase:
            client.close()
            raise AuthFailed("the venue returned no API credentials")
        creds = ApiCredentials(used.key, Secret(used.secret), Secret(used.passphrase))
        logger.info("derived API credentials for key id %s…", creds.api_key[:4])
    return client, creds


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each (non-trivial) secret replaced by ``***``."""
    for s in secrets:
        if len(s) >= 6 and s in text:
            text = text.replace(s, MASK)
    return text


_installed: list[str] = []


def install_log_redaction(secrets: Iterable[str | Secret]) -> Callable[[], None]:
    """Scrub these values from every log record created from now on (process-wide backstop).

    Wraps the log record factory once; later calls add values. Records that contain no secret keep
    their lazy formatting.

    Returns:
        A function that removes the redaction again (for tests; live processes keep it).
    """
    values = [s.reveal() if isinstance(s, Secret) else s for s in secrets]
    new = [v for v in values if len(v) >= 6 and v not in _installed]
    if _installed or not new:
        _installed.extend(new)
        return lambda: None
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the handler's problem, not ours
            return record
        clean = redact(message, _installed)
        if clean != message:
            record.msg, record.args = clean, None
        return record

    def uninstall() -> None:
        logging.setLogRecordFactory(previous)
        _installed.clear()

    logging.setLogRecordFactory(factory)
    _installed.extend(new)
    return uninstall
