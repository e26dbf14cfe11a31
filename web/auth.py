"""API tokens and sign-in rate limits, kept in the database (no per-process state)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa

from engine.storage.database import write_transaction

UTC = dt.timezone.utc
API, SESSION = "api", "session"  # the kinds of token (crm_token.kind)
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

    def issue(self, user_id: int, kind: str = API) -> str:
        """A new token of `kind` (API: a bearer token; SESSION: a browser session's)."""
        token = secrets.token_urlsafe(32)
        now = dt.datetime.now(UTC)
        with write_transaction(self.engine) as conn:
            conn.execute(self.tokens.insert().values(
                user_id=user_id, token_hash=_hash(token), created_at=now, kind=kind,
                expires_at=now + dt.timedelta(days=self.days)))
        return token

    def user_for(self, token: str, kinds: tuple[str, ...] = (API, SESSION)) -> int | None:
        """The user of a live token of one of `kinds` (one issued before kinds is of any)."""
        now = dt.datetime.now(UTC)
        t = self.tokens
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.c.user_id).where(
                t.c.token_hash == _hash(token), t.c.revoked_at.is_(None), t.c.expires_at > now,
                sa.or_(t.c.kind.in_(kinds), t.c.kind.is_(None)))).first()
        return row[0] if row else None

    def of_user(self, user_id: int, current: str | None = None) -> list[dict]:
        """The user's live tokens and sessions, newest first; `current` marks the one in use."""
        now = dt.datetime.now(UTC)
        t = self.tokens
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.id, t.c.kind, t.c.created_at, t.c.expires_at,
                                          t.c.token_hash).where(
                t.c.user_id == user_id, t.c.revoked_at.is_(None), t.c.expires_at > now)
                .order_by(t.c.id.desc())).mappings().all()
        mine = _hash(current) if current else None
        return [{"id": r["id"], "kind": r["kind"] or API, "created_at": r["created_at"],
                 "expires_at": r["expires_at"], "current": r["token_hash"] == mine}
                for r in rows]

    def revoke_own(self, user_id: int, token_id: int) -> bool:
        """Revoke one of the user's own tokens; False when they have no such live token."""
        t = self.tokens
        with write_transaction(self.engine) as conn:
            return conn.execute(t.update().where(
                t.c.id == token_id, t.c.user_id == user_id, t.c.revoked_at.is_(None))
                .values(revoked_at=dt.datetime.now(UTC))).rowcount == 1

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
