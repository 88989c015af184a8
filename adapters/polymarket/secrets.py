"""The private key and API credentials: loaded from the environment or a file, never shown.

* The private key comes from ``POLYMM_PRIVATE_KEY`` or from the file named by
  ``POLYMM_PRIVATE_KEY_FILE`` (one hex line; a warning if other users can read it).
* API credentials come from ``POLYMM_API_KEY``/``POLYMM_API_SECRET``/``POLYMM_API_PASSPHRASE``, or are
  derived with the key (L1: ``POST /auth/api-key``, falling back to ``GET /auth/derive-api-key``).
* ``verify_credentials`` asks the venue once (an authenticated read) whether it accepts them, so a
  run with bad credentials stops at start instead of posting orders into 401s.

Every value is checked before use (a key of the wrong length, not hex or outside the curve's range;
a secret that is not base64; a key or passphrase that could not go in an HTTP header): the error
names the variable, never the value.

``Secret`` and ``ApiCredentials`` print as ``Secret('***')``; the raw value is only returned by
``reveal()``, at the two places that need it (the client constructor and the user-channel subscribe
frame). The client's own ``ApiCreds`` dataclass prints its secret, so it is built at the last moment
and never logged. ``install_log_redaction`` is a process-wide backstop that scrubs known secret
values out of every log record (the HTTP/2 header encoder logs header values at DEBUG).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from py_clob_client_v2.client import ClobClient
from py_clob_client_v2.clob_types import ApiCreds

from adapters.polymarket.errors import AuthFailed, to_polymarket_error

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
    "derive_api_credentials",
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

    def to_clob(self) -> ApiCreds:
        """The client's ``ApiCreds`` (its repr shows the secret: hand it over, do not keep or log it)."""
        return ApiCreds(
            api_key=self.api_key, api_secret=self.secret.reveal(), api_passphrase=self.passphrase.reveal()
        )

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
    # The HMAC key is the URL-safe base64 decoding of the secret (py_clob_client_v2 signing.hmac).
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


def derive_api_credentials(client: Any) -> ApiCredentials:
    """Create or derive the API key with the client's L1 signer (two HTTP calls at most).

    Raises:
        AuthFailed: The venue gave no usable credentials.
    """
    try:
        creds = client.create_or_derive_api_key()
    except Exception as exc:
        raise to_polymarket_error(exc) from None
    if not creds or not creds.api_key or not creds.api_secret or not creds.api_passphrase:
        raise AuthFailed("the venue returned no API credentials")
    return ApiCredentials(creds.api_key, Secret(creds.api_secret), Secret(creds.api_passphrase))


def build_clob_client(
    host: str,
    key: Secret,
    creds: ApiCredentials | None = None,
    *,
    chain_id: int = 137,
    signature_type: int | None = None,
    funder: str | None = None,
    client_factory: Callable[..., Any] | None = None,
) -> tuple[Any, ApiCredentials]:
    """A ready ``ClobClient`` (L2) and its credentials; derives them when ``creds`` is None.

    Building the client makes no network call; deriving credentials makes one or two.
    """
    client = (client_factory or ClobClient)(
        host,
        chain_id=chain_id,
        key=key.reveal(),
        signature_type=signature_type,
        funder=funder,
        # We retry ourselves (backoff, Retry-After); the client's own retry sleeps 30 ms and resends.
        retry_on_error=False,
    )
    if creds is None:
        creds = derive_api_credentials(client)
        logger.info("derived API credentials for key id %s…", creds.api_key[:4])
    client.set_api_creds(creds.to_clob())
    return client, creds


def verify_credentials(client: Any) -> None:
    """Ask the venue once whether it accepts the client's credentials (``GET /auth/api-keys``, L2).

    The venue checks the API key, the passphrase, the HMAC made with the secret, and that the
    address signing (the private key's) owns the key.

    Raises:
        AuthFailed: 401 or 403: the credentials (or the private key they belong to) are refused.
        PolymarketError: the venue could not be asked (no reply, 5xx...) or answered something else.
    """
    try:
        client.get_api_keys()
    except Exception as exc:
        raise to_polymarket_error(exc) from None


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
