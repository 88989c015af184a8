"""CLOB authentication as the venue checks it: L1 (EIP-712 ``ClobAuth``) and L2 (HMAC-SHA256).

* L1 signs ``ClobAuth(address, timestamp, nonce, message)`` in the ``ClobAuthDomain`` domain (no
  verifying contract); the recovered address must be ``POLY_ADDRESS``. It guards only
  ``POST /auth/api-key`` and ``GET /auth/derive-api-key``.
* L2 is ``urlsafe_b64(hmac_sha256(urlsafe_b64decode(secret), ts + METHOD + path [+ body]))``, with the
  path without its query string and the body exactly as sent (``'`` read as ``"``).

API credentials are a pure function of ``(server key, address, nonce)``: the same pair always
derives the same key, as on the venue. Secrets never reach a log or an error message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import uuid
from collections.abc import Mapping
from typing import Final

import msgspec
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.address import to_checksum_address

__all__ = [
    "CLOB_AUTH_MESSAGE",
    "UNAUTHORIZED",
    "ApiCreds",
    "AuthError",
    "KeyStore",
    "l2_signature",
    "recover_l1_address",
]

CLOB_AUTH_MESSAGE: Final = "This message attests that I control the given wallet"
#: The venue's words for any L2 failure.
UNAUTHORIZED: Final = "Unauthorized/Invalid api key"
_CHAIN_ID: Final = 137

_CLOB_AUTH_TYPES: Final = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
    ],
    "ClobAuth": [
        {"name": "address", "type": "address"},
        {"name": "timestamp", "type": "string"},
        {"name": "nonce", "type": "uint256"},
        {"name": "message", "type": "string"},
    ],
}


class AuthError(Exception):
    """A request that fails authentication; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


class ApiCreds(msgspec.Struct, frozen=True, kw_only=True):
    """One API key: ``secret`` is url-safe base64 of 32 bytes (padded), as the clients decode it."""

    api_key: str
    secret: str
    passphrase: str
    address: str
    nonce: int

    def __repr__(self) -> str:
        # Keep the secret and passphrase out of reprs, tracebacks and logs.
        return f"ApiCreds(api_key={self.api_key!r}, address={self.address!r}, nonce={self.nonce})"


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower(), "")
    return value.strip()


def _check_ts(text: str, now_s: int, max_skew_s: int) -> None:
    try:
        ts = int(text)
    except ValueError:
        raise AuthError("Invalid L1 Request headers: bad POLY_TIMESTAMP") from None
    if abs(ts - now_s) > max_skew_s:
        raise AuthError(f"POLY_TIMESTAMP is more than {max_skew_s} s away from the server time")


def recover_l1_address(headers: Mapping[str, str], *, now_s: int, max_skew_s: int) -> tuple[str, int]:
    """Check L1 headers; return the checksummed address and the nonce.

    Raises:
        AuthError: A header is missing, the timestamp is off, or the signature is not the address's.
    """
    address, sig, ts = (
        _header(headers, "POLY_ADDRESS"),
        _header(headers, "POLY_SIGNATURE"),
        _header(headers, "POLY_TIMESTAMP"),
    )
    nonce_text = _header(headers, "POLY_NONCE") or "0"
    if not address or not sig or not ts:
        raise AuthError("Invalid L1 Request headers")
    _check_ts(ts, now_s, max_skew_s)
    try:
        nonce = int(nonce_text)
        checksum = to_checksum_address(address)
    except ValueError:
        raise AuthError("Invalid L1 Request headers") from None
    typed = {
        "types": _CLOB_AUTH_TYPES,
        "primaryType": "ClobAuth",
        "domain": {"name": "ClobAuthDomain", "version": "1", "chainId": _CHAIN_ID},
        "message": {"address": checksum, "timestamp": ts, "nonce": nonce, "message": CLOB_AUTH_MESSAGE},
    }
    try:
        signer = Account.recover_message(encode_typed_data(full_message=typed), signature=sig)
    except Exception:
        raise AuthError("Invalid L1 Request headers: bad signature") from None
    if signer.lower() != checksum.lower():
        raise AuthError("Invalid L1 Request headers: the signature is not POLY_ADDRESS's")
    return checksum, nonce


def l2_signature(secret: str, timestamp: str, method: str, path: str, body: str = "") -> str:
    """The L2 ``POLY_SIGNATURE`` of a request, computed as the official clients do."""
    key = base64.urlsafe_b64decode(secret)
    msg = f"{timestamp}{method}{path}"
    if body:
        msg += body.replace("'", '"')
    return base64.urlsafe_b64encode(hmac.new(key, msg.encode(), hashlib.sha256).digest()).decode()


class KeyStore:
    """API keys of the emulator: derived from a server key, created on first request.

    Thread-safe. ``created`` tracks which keys were handed out by ``POST /auth/api-key`` (a second
    create of the same key is refused, so clients fall back to derive, as on the venue).
    """

    def __init__(self, server_key: bytes) -> None:
        self._server_key = server_key
        self._lock = threading.Lock()
        self._by_key: dict[str, ApiCreds] = {}
        self._created: set[str] = set()

    def _make(self, address: str, nonce: int) -> ApiCreds:
        digest = hmac.new(self._server_key, f"{address.lower()}:{nonce}".encode(), hashlib.sha256).digest()
        key_bytes = hmac.new(self._server_key, b"key" + digest, hashlib.sha256).digest()
        secret_bytes = hmac.new(self._server_key, b"secret" + digest, hashlib.sha256).digest()
        passphrase = hmac.new(self._server_key, b"passphrase" + digest, hashlib.sha256).hexdigest()
        return ApiCreds(
            api_key=str(uuid.UUID(bytes=key_bytes[:16], version=4)),
            secret=base64.urlsafe_b64encode(secret_bytes).decode(),
            passphrase=passphrase,
            address=to_checksum_address(address),
            nonce=nonce,
        )

    def derive(self, address: str, nonce: int) -> ApiCreds:
        """The credentials of ``(address, nonce)``, always the same for the same pair (created if new)."""
        creds = self._make(address, nonce)
        with self._lock:
            self._by_key[creds.api_key] = creds
            self._created.add(creds.api_key)
        return creds

    def create(self, address: str, nonce: int) -> ApiCreds | None:
        """Hand out a new key; None when ``(address, nonce)`` already has one."""
        creds = self._make(address, nonce)
        with self._lock:
            if creds.api_key in self._created:
                return None
            self._by_key[creds.api_key] = creds
            self._created.add(creds.api_key)
        return creds

    def get(self, api_key: str) -> ApiCreds | None:
        """The credentials of a key handed out before, or None."""
        with self._lock:
            return self._by_key.get(api_key)

    def keys_of(self, address: str) -> tuple[str, ...]:
        """Every key handed out to ``address``."""
        with self._lock:
            return tuple(k for k, c in self._by_key.items() if c.address.lower() == address.lower())

    def check_ws(self, api_key: str, secret: str, passphrase: str) -> ApiCreds:
        """Credentials sent in a user-channel subscribe frame.

        Raises:
            AuthError: Unknown key or a secret/passphrase that does not match.
        """
        creds = self.get(api_key)
        if (
            creds is None
            or not hmac.compare_digest(creds.secret, secret)
            or not hmac.compare_digest(creds.passphrase, passphrase)
        ):
            raise AuthError(UNAUTHORIZED)
        return creds

    def verify_l2(
        self,
        headers: Mapping[str, str],
        method: str,
        path: str,
        body: bytes,
        *,
        now_s: int,
        max_skew_s: int,
    ) -> ApiCreds:
        """Check L2 headers of a request; return the key's credentials.

        Args:
            headers: Request headers.
            method: HTTP method, upper case.
            path: Request path without the query string.
            body: Raw request body.
            now_s: Server time in unix seconds.
            max_skew_s: Accepted distance of ``POLY_TIMESTAMP`` from ``now_s``.

        Raises:
            AuthError: Always 401 with the venue's message.
        """
        api_key = _header(headers, "POLY_API_KEY")
        sig = _header(headers, "POLY_SIGNATURE")
        ts = _header(headers, "POLY_TIMESTAMP")
        creds = self.get(api_key)
        if creds is None or not sig or not ts:
            raise AuthError(UNAUTHORIZED)
        if not hmac.compare_digest(_header(headers, "POLY_PASSPHRASE"), creds.passphrase):
            raise AuthError(UNAUTHORIZED)
        if _header(headers, "POLY_ADDRESS").lower() != creds.address.lower():
            raise AuthError(UNAUTHORIZED)
        try:
            _check_ts(ts, now_s, max_skew_s)
        except AuthError:
            raise AuthError(UNAUTHORIZED) from None
        try:
            text = body.decode()
        except UnicodeDecodeError:
            raise AuthError(UNAUTHORIZED) from None
        expected = l2_signature(creds.secret, ts, method, path, text)
        if not hmac.compare_digest(expected, sig):
            raise AuthError(UNAUTHORIZED)
        return creds
