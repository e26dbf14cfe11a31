"""What the admin console reads from the engine's own tables, one page at a time.

The audit trail, the webhook outbox and its delivery log, schedule ticks and failures, and
notifications can grow to millions of rows, so every list here is a keyset page (newest first)
on an index of its table, never a count and never a full load. The two writes of the console
outside the record service live here too, each audited in its own transaction: a webhook
message queued again ("retry now"), and the audit entry of a migration (written by the hook
`migration_audit` inside the migration's transaction).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from engine.errors import Conflict, NotFound
from engine.records.access import Caller
from engine.storage.database import write_transaction
from engine.storage.tables import Schema, UTCDateTime

UTC = dt.timezone.utc
# audit entries about the engine itself: a dot never occurs in an entity name (an identifier)
CONFIG_ENTITY = "crm.config"
WEBHOOK_ENTITY = "crm.webhook"
WEBHOOK_STATUSES = ("pending", "delivered", "given_up")


class BadCursor(ValueError):
    """A page cursor that this module did not make."""


@dataclass(frozen=True)
class AuditFilter:
    """Which audit entries to show; None means any. `since` <= at < `until`."""

    user_id: int | None = None
    entity: str | None = None
    record_id: int | None = None
    action: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def time_cursor(at: dt.datetime, row_id: int) -> str:
    return f"{at.astimezone(UTC).isoformat()}~{row_id}"


def parse_time_cursor(text: str) -> tuple[dt.datetime, int]:
    try:
        stamp, _, row_id = text.partition("~")
        at = dt.datetime.fromisoformat(stamp)
        return (at if at.tzinfo else at.replace(tzinfo=UTC)), parse_id_cursor(row_id)
    except ValueError:
        raise BadCursor(text) from None


def parse_id_cursor(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise BadCursor(text) from None
    if not 0 <= value < 2 ** 63:  # beyond what an id column holds: the database would fail
        raise BadCursor(text)
    return value


def _before(at_col, id_col, cursor: tuple[dt.datetime, int]):
    """Rows after `cursor` in (at, id) descending order, as one row comparison (an index
    range on (at, id) on both databases)."""
    at, row_id = cursor
    return sa.tuple_(at_col, id_col) < sa.tuple_(sa.literal(at, UTCDateTime()),
                                                 sa.literal(row_id, id_col.type))


class AdminViews:
    """Reads the engine tables of one schema for the admin console."""

    def __init__(self, schema: Schema, engine: sa.Engine):
        self.engine = engine
        tables = schema.engine
        self.audit, self.users = tables["audit"], tables["user"]
        self.outbox, self.deliveries = tables["outbox"], tables["webhook_delivery"]
        self.ticks, self.failures = tables["automation_tick"], tables["automation_failure"]
        self.notifications, self.config = tables["notification"], tables["config"]

    # ------------------------------------------------------------------ audit

    def audit_page(self, where: AuditFilter, limit: int = 50,
                   after: str | None = None) -> tuple[list[dict], str | None]:
        """Return one page of audit entries, newest first, and the cursor of the next page.

        Each filter meets an index: user (user_id, at), entity and record (entity, record_id,
        id), dates alone (at, id).
        """
        a, u = self.audit, self.users
        query = sa.select(a.c.id, a.c.entity, a.c.record_id, a.c.action, a.c.user_id, a.c.at,
                          a.c.changes, u.c.username, u.c.display_name) \
            .select_from(a.outerjoin(u, u.c.id == a.c.user_id))
        if where.user_id is not None:
            query = query.where(a.c.user_id == where.user_id)
        if where.entity is not None:
            query = query.where(a.c.entity == where.entity)
        if where.record_id is not None:
            query = query.where(a.c.record_id == where.record_id)
        if where.action is not None:
            query = query.where(sa.or_(a.c.action == where.action,
                                       a.c.action.startswith(where.action + ":")))
        if where.since is not None:
            query = query.where(a.c.at >= where.since)
        if where.until is not None:
            query = query.where(a.c.at < where.until)
        if after:
            query = query.where(_before(a.c.at, a.c.id, parse_time_cursor(after)))
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                query.order_by(a.c.at.desc(), a.c.id.desc()).limit(limit + 1))]
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (time_cursor(rows[-1]["at"], rows[-1]["id"]) if more else None)

    def user_id(self, username: str) -> int | None:
        u = self.users
        with self.engine.connect() as conn:
            return conn.execute(sa.select(u.c.id).where(
                sa.func.lower(u.c.username) == username.strip().lower())).scalar()

    # ------------------------------------------------------------------ webhooks

    def webhook_page(self, status: str | None = None, automation: str | None = None,
                     limit: int = 50, after: str | None = None) -> tuple[list[dict], str | None]:
        """Return queued webhook messages, newest first, each with its last attempt."""
        o = self.outbox
        query = sa.select(o.c.id, o.c.automation, o.c.url, o.c.created_at, o.c.next_attempt_at,
                          o.c.attempts, o.c.delivered_at, o.c.given_up_at)
        if status == "delivered":
            query = query.where(o.c.delivered_at.is_not(None))
        elif status == "given_up":
            query = query.where(o.c.given_up_at.is_not(None))
        elif status == "pending":
            query = query.where(o.c.delivered_at.is_(None), o.c.given_up_at.is_(None))
        if automation:
            query = query.where(o.c.automation == automation)
        if after:
            query = query.where(o.c.id < parse_id_cursor(after))
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                query.order_by(o.c.id.desc()).limit(limit + 1))]
            more = len(rows) > limit
            rows = rows[:limit]
            last = self._last_attempts(conn, [r["id"] for r in rows])
        for row in rows:
            row["status"] = _status(row)
            row["last"] = last.get(row["id"])
        return rows, (str(rows[-1]["id"]) if more else None)

    def _last_attempts(self, conn, ids: list[int]) -> dict[int, dict]:
        if not ids:
            return {}
        d = self.deliveries
        newest = sa.select(sa.func.max(d.c.id)).where(d.c.outbox_id.in_(ids)) \
            .group_by(d.c.outbox_id)
        return {r.outbox_id: dict(r._mapping) for r in conn.execute(
            sa.select(d).where(d.c.id.in_(newest)))}

    def webhook(self, message_id: int) -> tuple[dict, list[dict]]:
        """Return one queued message (with its body) and all its attempts, newest first."""
        o, d = self.outbox, self.deliveries
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(o).where(o.c.id == message_id)).first()
            if row is None:
                raise NotFound(f"webhook message {message_id} was not found")
            attempts = [dict(r._mapping) for r in conn.execute(
                sa.select(d).where(d.c.outbox_id == message_id).order_by(d.c.id.desc()))]
        message = dict(row._mapping)
        message["status"] = _status(message)
        return message, attempts

    def retry_webhook(self, message_id: int, actor: Caller,
                      now: dt.datetime | None = None) -> None:
        """Make a message due now, also one that was given up (it gets one more attempt per
        retry); refuse a delivered one. Audited as webhook:retry."""
        now = now or dt.datetime.now(UTC)
        o = self.outbox
        with write_transaction(self.engine) as conn:
            row = conn.execute(sa.select(o.c.delivered_at, o.c.given_up_at, o.c.next_attempt_at)
                               .where(o.c.id == message_id).with_for_update()).first()
            if row is None:
                raise NotFound(f"webhook message {message_id} was not found")
            if row.delivered_at is not None:
                raise Conflict(f"webhook message {message_id} was delivered already")
            conn.execute(o.update().where(o.c.id == message_id)
                         .values(next_attempt_at=now, given_up_at=None))
            conn.execute(self.audit.insert().values(
                entity=WEBHOOK_ENTITY, record_id=message_id, action="webhook:retry",
                user_id=actor.user_id, at=now, changes={
                    "next_attempt_at": [_iso(row.next_attempt_at), _iso(now)],
                    "given_up_at": [_iso(row.given_up_at), None]}))

    # ------------------------------------------------------------------ schedules

    def last_ticks(self, automations: list[str]) -> dict[str, dict]:
        """Return the newest tick of each schedule automation.

        One indexed look-up per automation (their number is fixed by the configuration): a
        single GROUP BY would read every tick ever run.
        """
        k = self.ticks
        found = {}
        with self.engine.connect() as conn:
            for name in automations:
                row = conn.execute(sa.select(k).where(k.c.automation == name)
                                   .order_by(k.c.tick_at.desc()).limit(1)).first()
                if row is not None:
                    found[name] = dict(row._mapping)
        return found

    def ticks_of(self, automation: str, limit: int = 20) -> list[dict]:
        k = self.ticks
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                sa.select(k).where(k.c.automation == automation)
                .order_by(k.c.tick_at.desc()).limit(limit))]

    def failure_page(self, automation: str, limit: int = 50,
                     after: str | None = None) -> tuple[list[dict], str | None]:
        """Return the failures of one automation, newest first (index (automation, at))."""
        f = self.failures
        query = sa.select(f).where(f.c.automation == automation)
        if after:
            query = query.where(_before(f.c.at, f.c.id, parse_time_cursor(after)))
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                query.order_by(f.c.at.desc(), f.c.id.desc()).limit(limit + 1))]
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (time_cursor(rows[-1]["at"], rows[-1]["id"]) if more else None)

    # ------------------------------------------------------------------ notifications

    def notification_page(self, user_id: int | None = None, unread_only: bool = False,
                          limit: int = 50,
                          after: str | None = None) -> tuple[list[dict], str | None]:
        """Return notifications sent, newest first, with their recipient's name."""
        n, u = self.notifications, self.users
        query = sa.select(n, u.c.username, u.c.display_name) \
            .select_from(n.join(u, u.c.id == n.c.user_id))
        if user_id is not None:
            query = query.where(n.c.user_id == user_id)
        if unread_only:
            query = query.where(n.c.read_at.is_(None))
        if after:
            query = query.where(n.c.id < parse_id_cursor(after))
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                query.order_by(n.c.id.desc()).limit(limit + 1))]
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (str(rows[-1]["id"]) if more else None)

    # ------------------------------------------------------------------ migrations

    def applied_configurations(self, limit: int = 10) -> list[dict]:
        """Return when the last configurations were applied (not their snapshots)."""
        c = self.config
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                sa.select(c.c.id, c.c.applied_at).order_by(c.c.id.desc()).limit(limit))]

    def migration_audit(self, actor: Caller, allow_data_loss: bool):
        """Return the `on_applied` hook of `migrate` that audits who applied what."""
        def write(conn: sa.Connection, plan) -> None:
            config_id = conn.execute(sa.select(sa.func.max(self.config.c.id))).scalar()
            changes = [s.description for s in plan.changes]
            conn.execute(self.audit.insert().values(
                entity=CONFIG_ENTITY, record_id=config_id or 0,
                action="config:migrate" if changes else "config:reload",
                user_id=actor.user_id, at=dt.datetime.now(UTC),
                changes={"steps": changes, "allow_data_loss": allow_data_loss}))
        return write


def _status(row: dict) -> str:
    if row["delivered_at"] is not None:
        return "delivered"
    return "given_up" if row["given_up_at"] is not None else "pending"


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None
