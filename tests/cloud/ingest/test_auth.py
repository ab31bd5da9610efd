"""API keys and bearer tokens: only a valid, unexpired token of a stored key gets in."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from cloud.auth import Authenticator, create_api_key
from cloud.errors import InvalidArgument, Unauthenticated
from cloud.model import Principal
from cloud.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

NS = 1_000_000_000


class Wall:
    def __init__(self) -> None:
        self.now_ns = 1_700_000_000 * NS

    def __call__(self) -> int:
        return self.now_ns


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
def store(tmp_path: Path, wall: Wall) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "cloud", wall_ns=wall)
    yield s
    s.close()


def test_a_key_authenticates_and_its_token_carries_the_key_scope(store, wall):
    key_id, secret = create_api_key(
        store, org_id="org-a", location_id="loc-a", part_id="part-1", wall_ns=wall
    )
    auth = Authenticator(store, wall_ns=wall)
    token = auth.authenticate(key_id, "api-key", secret)
    assert auth.verify(f"Bearer {token}") == Principal(key_id, "org-a", "loc-a", "part-1")


def test_an_org_wide_key_has_no_part(store, wall):
    key_id, secret = create_api_key(store, org_id="o", location_id="l", wall_ns=wall)
    auth = Authenticator(store, wall_ns=wall)
    assert auth.verify("bearer " + auth.authenticate(key_id, "api-key", secret)).part_id is None


def test_only_a_salted_hash_of_the_secret_is_stored(store, wall):
    key_id, secret = create_api_key(store, org_id="o", location_id="l", wall_ns=wall)
    record = store.get_api_key(key_id)
    assert record is not None
    assert secret.encode() not in record.secret_hash
    assert len(record.salt) == 16
    other_id, other_secret = create_api_key(store, org_id="o", location_id="l", wall_ns=wall)
    assert other_secret != secret
    assert other_id != key_id


@pytest.mark.parametrize(
    ("entity", "cred_type", "payload", "message"),
    [
        ("KEY", "api-key", "wrong", "invalid API key id or key"),
        ("no-such-key", "api-key", "SECRET", "invalid API key id or key"),
        ("", "api-key", "SECRET", "invalid API key id or key"),
        ("KEY", "robot-secret", "SECRET", "credentials type 'robot-secret' is not supported"),
    ],
)
def test_wrong_credentials_are_unauthenticated_without_saying_which_part_is_wrong(
    store, wall, entity, cred_type, payload, message
):
    key_id, secret = create_api_key(store, org_id="o", location_id="l", wall_ns=wall)
    entity = entity.replace("KEY", key_id)
    payload = payload.replace("SECRET", secret)
    with pytest.raises(Unauthenticated, match=message):
        Authenticator(store, wall_ns=wall).authenticate(entity, cred_type, payload)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing 'authorization: Bearer <token>' metadata"),
        ("", "missing"),
        ("Basic abc", "must be 'Bearer <token>'"),
        ("Bearer", "must be 'Bearer <token>'"),
        ("Bearer a.b", "malformed bearer token"),
        ("Bearer x.y.z", "malformed bearer token"),
    ],
)
def test_missing_or_malformed_authorization_is_unauthenticated(store, wall, header, message):
    with pytest.raises(Unauthenticated, match=message):
        Authenticator(store, wall_ns=wall).verify(header)


def test_a_tampered_token_is_rejected(store, wall):
    key_id, secret = create_api_key(store, org_id="org-a", location_id="l", wall_ns=wall)
    auth = Authenticator(store, wall_ns=wall)
    header, body, sig = auth.authenticate(key_id, "api-key", secret).split(".")
    import base64
    import json

    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["org"] = "org-b"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(Unauthenticated, match="signature is invalid"):
        auth.verify(f"Bearer {header}.{forged}.{sig}")


def test_a_token_from_another_server_store_is_rejected(tmp_path, store, wall):
    key_id, secret = create_api_key(store, org_id="o", location_id="l", wall_ns=wall)
    token = Authenticator(store, wall_ns=wall).authenticate(key_id, "api-key", secret)
    other = SqliteStore(tmp_path / "other", wall_ns=wall)
    try:
        with pytest.raises(Unauthenticated, match="signature is invalid"):
            Authenticator(other, wall_ns=wall).verify(f"Bearer {token}")
    finally:
        other.close()


def test_a_token_expires_after_its_ttl(store, wall):
    key_id, secret = create_api_key(store, org_id="o", location_id="l", wall_ns=wall)
    auth = Authenticator(store, wall_ns=wall, ttl_s=60)
    token = auth.authenticate(key_id, "api-key", secret)
    wall.now_ns += 59 * NS
    auth.verify(f"Bearer {token}")
    wall.now_ns += 1 * NS
    with pytest.raises(Unauthenticated, match="expired"):
        auth.verify(f"Bearer {token}")


def test_tokens_survive_a_server_restart(tmp_path, store, wall):
    """The signing secret is stored, so tokens issued before a restart stay valid."""
    key_id, secret = create_api_key(store, org_id="o", location_id="l", wall_ns=wall)
    token = Authenticator(store, wall_ns=wall).authenticate(key_id, "api-key", secret)
    store.close()
    reopened = SqliteStore(tmp_path / "cloud", wall_ns=wall)
    try:
        assert Authenticator(reopened, wall_ns=wall).verify(f"Bearer {token}").org_id == "o"
    finally:
        reopened.close()


@pytest.mark.parametrize(
    ("org", "loc", "part", "message"),
    [
        ("", "l", None, "org: must be a non-empty printable id"),
        ("o", " l", None, "location: must be a non-empty printable id"),
        ("o", "l", "", "part: must be a non-empty printable id"),
        ("o\n", "l", None, "org: must be a non-empty printable id"),
    ],
)
def test_key_creation_rejects_bad_ids(store, wall, org, loc, part, message):
    with pytest.raises(InvalidArgument, match=message):
        create_api_key(store, org_id=org, location_id=loc, part_id=part, wall_ns=wall)


def test_a_secret_never_looks_like_a_command_line_option(store, wall):
    """`ferry export --key <secret>` must parse whatever the secret is."""
    secrets = [
        create_api_key(store, org_id="o", location_id="l", wall_ns=wall)[1] for _ in range(50)
    ]
    assert all(s.startswith("fk_") for s in secrets)
