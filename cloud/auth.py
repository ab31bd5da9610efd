"""API keys and bearer tokens: how a caller proves who it is and what it may touch.

A key is a random id plus a random 256-bit secret; the store keeps only an
HMAC-SHA256 of the secret under a per-key salt (high-entropy secrets need no
slow hash). ``Authenticate`` exchanges a key for a bearer token: an HS256 JWT
signed with the store's token secret, carrying the key's scope, so verifying a
call is one HMAC and needs no database read — any number of stateless ingest
servers sharing a store accept each other's tokens.

Example::

    auth = Authenticator(store, wall_ns=time.time_ns)
    key_id, secret = create_api_key(store, org_id="org", location_id="loc", wall_ns=...)
    token = auth.authenticate(key_id, "api-key", secret)
    principal = auth.verify(f"Bearer {token}")
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import uuid
from typing import TYPE_CHECKING, final

from cloud.errors import InvalidArgument, Unauthenticated
from cloud.model import ApiKeyRecord, Principal

if TYPE_CHECKING:
    from collections.abc import Callable

    from cloud.store.port import Store

API_KEY_TYPE = "api-key"
KEY_PREFIX = "fk_"
DEFAULT_TOKEN_TTL_S = 24 * 3600
_NS = 1_000_000_000


def hash_secret(secret: str, salt: bytes) -> bytes:
    """The stored form of a key's secret."""
    return hmac.new(salt, secret.encode(), hashlib.sha256).digest()


def create_api_key(
    store: Store,
    *,
    org_id: str,
    location_id: str,
    part_id: str | None = None,
    wall_ns: Callable[[], int],
) -> tuple[str, str]:
    """Creates and stores a new API key; returns ``(key_id, secret)``.

    The secret is shown once: only its salted hash is stored.

    Raises:
        InvalidArgument: an id is empty or not printable.
    """
    for name, value in (("org", org_id), ("location", location_id), ("part", part_id)):
        if value is not None and (not value or not value.isprintable() or value != value.strip()):
            raise InvalidArgument(f"{name}: must be a non-empty printable id, got {value!r}")
    key_id = str(uuid.uuid4())
    # A fixed prefix: a secret never starts with "-" (which command lines would
    # take for an option, e.g. `ferry export --key -abc…`), and leaked keys are
    # easy to spot and scan for.
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    store.put_api_key(
        ApiKeyRecord(
            key_id=key_id,
            org_id=org_id,
            location_id=location_id,
            part_id=part_id,
            secret_hash=hash_secret(secret, salt),
            salt=salt,
            created_ns=wall_ns(),
        )
    )
    return key_id, secret


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HEADER = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())


@final
class Authenticator:
    """Issues and verifies bearer tokens for the keys in a store."""

    def __init__(
        self, store: Store, *, wall_ns: Callable[[], int], ttl_s: int = DEFAULT_TOKEN_TTL_S
    ) -> None:
        self._store = store
        self._wall_ns = wall_ns
        self._ttl_s = ttl_s
        self._secret = store.token_secret()

    def authenticate(self, entity: str, credential_type: str, payload: str) -> str:
        """Checks an API key and returns a bearer token for its scope.

        Raises:
            Unauthenticated: unknown key, wrong secret, or an unsupported type.
        """
        if credential_type != API_KEY_TYPE:
            raise Unauthenticated(
                f"credentials type {credential_type!r} is not supported; use {API_KEY_TYPE!r}"
            )
        record = self._store.get_api_key(entity) if entity else None
        if record is None or not hmac.compare_digest(
            record.secret_hash, hash_secret(payload, record.salt)
        ):
            # One message for both cases: do not reveal which key ids exist.
            raise Unauthenticated("invalid API key id or key")
        now_s = self._wall_ns() // _NS
        claims = {
            "sub": record.key_id,
            "org": record.org_id,
            "loc": record.location_id,
            "part": record.part_id,
            "iat": now_s,
            "exp": now_s + self._ttl_s,
        }
        body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        signing_input = f"{_HEADER}.{body}"
        return f"{signing_input}.{_b64(self._sign(signing_input))}"

    def verify(self, authorization: str | None) -> Principal:
        """The caller of an ``authorization: Bearer <token>`` header.

        Raises:
            Unauthenticated: the header is missing or malformed, or the token is
                forged or expired.
        """
        if not authorization:
            raise Unauthenticated("missing 'authorization: Bearer <token>' metadata")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("authorization metadata must be 'Bearer <token>'")
        parts = token.strip().split(".")
        if len(parts) != 3 or parts[0] != _HEADER:
            raise Unauthenticated("malformed bearer token")
        try:
            signature = _unb64(parts[2])
            claims = json.loads(_unb64(parts[1]))
        except (binascii.Error, ValueError):
            raise Unauthenticated("malformed bearer token") from None
        if not hmac.compare_digest(signature, self._sign(f"{parts[0]}.{parts[1]}")):
            raise Unauthenticated("bearer token signature is invalid")
        if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int):
            raise Unauthenticated("malformed bearer token")
        if claims["exp"] <= self._wall_ns() // _NS:
            raise Unauthenticated("bearer token expired; authenticate again")
        part = claims.get("part")
        return Principal(
            key_id=str(claims["sub"]),
            org_id=str(claims["org"]),
            location_id=str(claims["loc"]),
            part_id=str(part) if part is not None else None,
        )

    def _sign(self, signing_input: str) -> bytes:
        return hmac.new(self._secret, signing_input.encode(), hashlib.sha256).digest()
