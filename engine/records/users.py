"""Users and their roles: creation, password hashing and look-up as a `Caller`."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

import sqlalchemy as sa

from engine.errors import Conflict, NotFound, ValidationFailed
from engine.records.access import Caller
from engine.registry.model import Registry
from engine.storage.database import write_transaction
from engine.storage.tables import Schema

UTC = dt.timezone.utc
# scrypt: a slow, salted, memory-hard KDF from the standard library (n=2^15 ~ 32 MiB, ~50 ms)
_N, _R, _P = 2 ** 15, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=2 ** 26)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                               p=int(p), maxmem=2 ** 26)
    return hmac.compare_digest(candidate.hex(), digest)


class Users:
    """The engine's user accounts."""

    def __init__(self, registry: Registry, engine: sa.Engine, schema: Schema):
        self.registry, self.engine = registry, engine
        self.users = schema.engine["user"]
        self.user_roles = schema.engine["user_role"]

    def create(self, username: str, password: str, roles: list[str], *,
               display_name: str | None = None, email: str | None = None,
               locale: str | None = None) -> int:
        """Create a user with roles; refuse unknown roles and taken usernames."""
        unknown = [r for r in roles if r not in self.registry.roles]
        if unknown:
            raise ValidationFailed(f"unknown role '{unknown[0]}'", {"roles": [
                f"unknown role '{r}'" for r in unknown]})
        username = username.strip()
        if not username or len(username) > 150:
            raise ValidationFailed("a username is 1 to 150 characters",
                                   {"username": ["is required"]})
        if not password:
            raise ValidationFailed("a password is required", {"password": ["is required"]})
        hashed = hash_password(password)
        with write_transaction(self.engine) as conn:
            taken = conn.execute(sa.select(self.users.c.id).where(
                sa.func.lower(self.users.c.username) == username.lower())).first()
            if taken:
                raise Conflict(f"user '{username}' exists already")
            user_id = conn.execute(self.users.insert().values(
                username=username, display_name=display_name or username, email=email,
                password_hash=hashed, locale=locale, active=True,
                created_at=dt.datetime.now(UTC))).inserted_primary_key[0]
            for role in dict.fromkeys(roles):
                conn.execute(self.user_roles.insert().values(user_id=user_id, role=role))
        return int(user_id)

    def caller(self, user_id: int, locale: str | None = None) -> Caller:
        """Return the Caller for an active user id."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.users).where(self.users.c.id == user_id,
                                                           self.users.c.active)).first()
            if row is None:
                raise NotFound(f"user {user_id} was not found")
            roles = tuple(r for (r,) in conn.execute(
                sa.select(self.user_roles.c.role).where(self.user_roles.c.user_id == user_id)
                .order_by(self.user_roles.c.role)))
        return Caller(user_id=row.id, roles=roles, locale=locale or row.locale or "en",
                      username=row.username, display_name=row.display_name, email=row.email)

    def authenticate(self, username: str, password: str) -> int | None:
        """Return the user id when the password matches an active user, else None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.users.c.id, self.users.c.password_hash).where(
                sa.func.lower(self.users.c.username) == username.strip().lower(),
                self.users.c.active)).first()
        if row is None:
            verify_password(password, hash_password("timing"))  # same cost as a real check
            return None
        return int(row.id) if verify_password(password, row.password_hash) else None

    def by_username(self, username: str) -> int | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.users.c.id).where(
                sa.func.lower(self.users.c.username) == username.lower())).first()
        return int(row.id) if row else None
