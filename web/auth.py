"""API tokens and sign-in rate limits, kept in the database (no per-process state)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa

from engine.storage.database import write_transaction

UTC = dt.timezone.utc
FAILURES_PER_MINUTE = 10  # for one username from one address
FAILURES_PER_ADDRESS = 30  # for all usernames together from one address


def sign_in_limits(username: str, address: str | None) -> tuple[tuple[str, int], ...]:
    """The failure counters a sign-in attempt is held to, with their limits per minute.

    Keyed on (username, address), not the username alone: otherwise anyone could lock a user
    out by failing on purpose from elsewhere. An address trying many usernames meets its own
    cap. Usernames are compared as they are matched: trimmed, any case."""
    name = username.strip().lower()
    return ((f"user:{name}@{address}", FAILURES_PER_MINUTE),
            (f"addr:{address}", FAILURES_PER_ADDRESS))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    def __init__(self, engine: sa.Engine, schema, days: int):
        self.engine, self.days = engine, days
        self.tokens = schema.engine["token"]
        self.failures = schema.engine["login_failure"]

    def issue(self, user_id: int) -> str:
        token = secrets.token_urlsafe(32)
        now = dt.datetime.now(UTC)
        with write_transaction(self.engine) as conn:
            conn.execute(self.tokens.insert().values(
                user_id=user_id, token_hash=_hash(token), created_at=now,
                expires_at=now + dt.timedelta(days=self.days)))
        return token

    def user_for(self, token: str) -> int | None:
        now = dt.datetime.now(UTC)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.tokens.c.user_id).where(
                self.tokens.c.token_hash == _hash(token), self.tokens.c.revoked_at.is_(None),
                self.tokens.c.expires_at > now)).first()
        return row[0] if row else None

    def revoke(self, token: str) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(self.tokens.update().where(self.tokens.c.token_hash == _hash(token))
                         .values(revoked_at=dt.datetime.now(UTC)))

    def retry_after(self, limits) -> int:
        """Seconds until another attempt is allowed under every (key, limit per minute) of
        `limits` (0: allowed now)."""
        now = dt.datetime.now(UTC)
        since = now - dt.timedelta(minutes=1)
        with self.engine.connect() as conn:
            for key, limit in limits:
                rows = conn.execute(sa.select(self.failures.c.at).where(
                    self.failures.c.key == key, self.failures.c.at > since)
                    .order_by(self.failures.c.at)).all()
                if len(rows) >= limit:
                    oldest = rows[-limit][0]
                    return max(1, int((oldest + dt.timedelta(minutes=1) - now).total_seconds()) + 1)
        return 0

    def failed(self, limits) -> None:
        """Count a failed attempt on every key of `limits`."""
        now = dt.datetime.now(UTC)
        with write_transaction(self.engine) as conn:
            conn.execute(self.failures.insert(), [{"key": k, "at": now} for k, _ in limits])
            conn.execute(self.failures.delete().where(
                self.failures.c.at < now - dt.timedelta(hours=1)))
