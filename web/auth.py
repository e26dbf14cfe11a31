"""API tokens and sign-in rate limits, kept in the database (no per-process state)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa

from engine.storage.database import write_transaction

UTC = dt.timezone.utc
FAILURES_PER_MINUTE = 10


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

    def retry_after(self, *keys: str) -> int:
        """Seconds until another attempt is allowed for any of `keys` (0: allowed now)."""
        now = dt.datetime.now(UTC)
        since = now - dt.timedelta(minutes=1)
        with self.engine.connect() as conn:
            for key in keys:
                rows = conn.execute(sa.select(self.failures.c.at).where(
                    self.failures.c.key == key, self.failures.c.at > since)
                    .order_by(self.failures.c.at)).all()
                if len(rows) >= FAILURES_PER_MINUTE:
                    oldest = rows[-FAILURES_PER_MINUTE][0]
                    return max(1, int((oldest + dt.timedelta(minutes=1) - now).total_seconds()) + 1)
        return 0

    def failed(self, *keys: str) -> None:
        now = dt.datetime.now(UTC)
        with write_transaction(self.engine) as conn:
            conn.execute(self.failures.insert(), [{"key": k, "at": now} for k in keys])
            conn.execute(self.failures.delete().where(
                self.failures.c.at < now - dt.timedelta(hours=1)))
