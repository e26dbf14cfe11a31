"""Automations (DSL §5b): event automations inside the triggering transaction, schedule
automations once per tick, and in-app notifications.

Event automations run in the transaction of the change that triggered them, so their
effects commit or roll back with it. A change an automation makes to a record it is already
handling does not trigger automations of that record again (loop safety); changes to other
records do, up to a fixed depth. Actions run as the engine on behalf of the user who made the
change: a `transition` action skips the transition's roles but not its guard.

A schedule tick is a row of `crm_automation_tick`, written once by whichever process first
sees it is due. A worker claims it with a lease, then handles each record in its own
transaction, which also moves the tick's checkpoint (`last_id`) past that record: so each
record is handled once per tick, and a worker killed halfway leaves the rest to the next one
to claim the tick when the lease runs out.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import replace
from functools import partial
from typing import Callable

import sqlalchemy as sa

from engine.errors import Conflict, NotFound, RecordError, ValidationFailed
from engine.expr import EvaluationError
from engine.records.access import SYSTEM, Caller
from engine.records.values import Invalid, coerce
from engine.registry.model import Action, Automation, Entity
from engine.storage import leases
from engine.storage.database import AFTER_COMMIT, after_commit, insert_or_merge, write_transaction

UTC = dt.timezone.utc
MAX_DEPTH = 8
log = logging.getLogger("crm.automations")
_HANDLING = "crm_automation_records"  # key in the connection's info: records being handled


class Automations:
    """Runs the automations of one RecordService."""

    def __init__(self, service):
        self.service = service
        self.by_event: dict[tuple[str, str], list[Automation]] = {}
        self.scheduled: list[Automation] = []
        for automation in service.registry.automations.values():
            if automation.schedule is not None:
                self.scheduled.append(automation)
            else:
                key = automation.transition if automation.event == "transition" else None
                self.by_event.setdefault((automation.entity, automation.event + (
                    f":{key}" if key else "")), []).append(automation)
        self.notifications = service.schema.engine["notification"]
        mail = service.registry.mail  # notifications mailed too (engine/mail/notify.py)
        self.mail_notifications = bool(mail and mail.notifications and mail.smtp)
        self.ticks = service.schema.engine["automation_tick"]
        self.failures = service.schema.engine["automation_failure"]

    # ------------------------------------------------------------------ events

    def on_event(self, conn, caller: Caller, entity: Entity, event: str, record: dict) -> bool:
        """Run the automations of `event` ("created", "updated", "deleted", "transition:x");
        return whether any ran (and so may have changed the record)."""
        automations = self.by_event.get((entity.name, event))
        if not automations:
            return False
        handling: list = conn.info.setdefault(_HANDLING, [])
        key = (entity.name, record["id"])
        if key in handling or len(handling) >= MAX_DEPTH:
            return False
        handling.append(key)
        ran = False
        try:
            # the conditions share one scope of the record (its references read once) until
            # an automation acts, which may change what they read
            scope = None
            for automation in automations:
                if scope is None:
                    scope = self.service._scope(conn, caller, entity, record)
                acted = self.run(conn, caller, automation, entity, record, scope)
                if acted:
                    scope = None
                ran |= acted
        finally:
            handling.pop()
        return ran

    def run(self, conn, caller: Caller, automation: Automation, entity: Entity,
            record: dict, scope: dict | None = None) -> bool:
        """Run one automation on one record if its condition holds (tested on `scope`, the
        record's scope, made here when not given); return whether it ran."""
        service = self.service
        if scope is None:
            scope = service._scope(conn, caller, entity, record)
        if automation.condition is not None:
            try:
                if not automation.condition.test(scope):
                    return False
            except EvaluationError:
                return False
        acting = replace(caller, roles=tuple(caller.roles) + ("admin",), system=True)
        for i, action in enumerate(automation.actions):
            current = record if action.kind in ("notify", "create") else \
                service.get(SYSTEM, entity.name, record["id"], conn=conn)
            if i or current is not record:  # the first acts on what the condition read
                scope = service._scope(conn, caller, entity, current)
            self._act(conn, acting, automation, action, entity, current, scope)
        return True

    def _act(self, conn, acting: Caller, automation: Automation, action: Action,
             entity: Entity, record: dict, scope: dict) -> None:
        service = self.service
        if action.kind == "transition":
            try:
                service.transition(acting, entity.name, record["id"], action.transition,
                                   conn=conn)
            except Conflict:
                pass  # not possible from the record's state now: nothing to do
            except ValidationFailed as exc:
                message = f"automation '{automation.name}': {exc.message}"
                raise ValidationFailed(message, {"__all__": [message]}) from None
            return
        if action.kind == "set":
            values = _evaluate(automation, action.values, scope, entity)
            service._save(conn, acting, entity, record, values, {},
                          f"automation:{automation.name}")
            return
        if action.kind == "webhook":
            service.webhooks.enqueue(conn, automation, action, entity, record)
            return
        if action.kind == "create":
            target = service.registry.entities[action.entity]
            service.create(acting, target.name, _evaluate(automation, action.values, scope,
                                                          target), conn=conn)
            return
        self.notify(conn, self.recipients(conn, action, entity, record), action, entity,
                    record)

    def recipients(self, conn, action: Action, entity: Entity, record: dict) -> list[int]:
        if action.notify_role:
            users = self.service.users
            roles = self.service.schema.engine["user_role"]
            rows = conn.execute(sa.select(users.c.id).join(roles, roles.c.user_id == users.c.id)
                                .where(roles.c.role == action.notify_role, users.c.active)
                                .distinct())
            return sorted(r[0] for r in rows)
        target = record.get("owner") if action.notify_to == "owner" else \
            record.get(action.notify_to)
        return [target] if target else []

    def notify(self, conn, user_ids: list[int], action: Action, entity: Entity,
               record: dict) -> None:
        if not user_ids:
            return
        stamp = dt.datetime.now(UTC)
        mailed = self.mail_notifications
        conn.execute(self.notifications.insert(), [{
            "user_id": user_id, "message": action.message.as_dict(),
            "title": action.title.as_dict() if action.title else None,
            "entity": entity.name, "record_id": record.get("id"), "created_at": stamp,
            "mail_state": "pending" if mailed else None}
            for user_id in user_ids])
        if mailed and not any(getattr(c, "func", None) is _ask_for_mail
                              for c in conn.info.get(AFTER_COMMIT, ())):
            after_commit(conn, partial(_ask_for_mail, self.service))

    # ------------------------------------------------------------------ schedules

    def run_due(self, now: dt.datetime | None = None, owner: str | None = None) -> list[str]:
        """Run to its end every schedule tick that is due and not finished (a tick another
        worker holds is left to it); one line per tick this call finished."""
        now = now or dt.datetime.now(UTC)
        owner = owner or leases.new_identity()
        report = []
        for automation in self.scheduled:
            tick = current_tick(automation, now)
            if tick is None:
                continue
            self.open_tick(automation.name, tick, now)
            line = self.run_tick(automation.name, tick, owner)
            if line is not None:
                report.append(line)
        return report

    def due_ticks(self, now: dt.datetime | None = None,
                  again_after: float = 0.0) -> list[tuple[str, dt.datetime]]:
        """Open the current tick of every schedule automation (once: the first process to ask
        writes it) and return the unfinished ticks nobody holds that were not handed out in
        the last `again_after` seconds, marking them handed out (for the scheduler)."""
        now = now or dt.datetime.now(UTC)
        for automation in self.scheduled:
            tick = current_tick(automation, now)
            if tick is not None:
                self.open_tick(automation.name, tick, now)
        t = self.ticks
        names = [a.name for a in self.scheduled]
        if not names:
            return []
        recent = now - dt.timedelta(seconds=again_after)
        with write_transaction(self.service.engine) as conn:
            found = [(r.automation, r.tick_at) for r in conn.execute(
                sa.select(t.c.automation, t.c.tick_at).where(
                    t.c.automation.in_(names), t.c.finished_at.is_(None), leases.free(t, now),
                    sa.or_(t.c.enqueued_at.is_(None), t.c.enqueued_at <= recent))
                .order_by(t.c.tick_at))]
            for name, tick in found:
                conn.execute(t.update().where(t.c.automation == name, t.c.tick_at == tick)
                             .values(enqueued_at=now))
        return found

    def open_tick(self, name: str, tick: dt.datetime, now: dt.datetime) -> bool:
        """Write the tick of automation `name` unless it exists; return whether this did."""
        with write_transaction(self.service.engine) as conn:
            insert = insert_or_merge(conn, self.ticks)
            return conn.execute(insert.values(
                automation=name, tick_at=tick, started_at=now, matched=0, failed=0, last_id=0)
                .on_conflict_do_nothing().returning(self.ticks.c.automation)).first() is not None

    def run_tick(self, name: str, tick: dt.datetime, owner: str,
                 stopping: Callable[[], bool] | None = None) -> str | None:
        """Claim the tick and run its automation on every record not done yet, each record
        in its own transaction together with the tick's checkpoint; return its line, or
        None when the tick was not this worker's to run (finished, or held by another) or
        this worker stopped before the end (the tick is released for another to go on)."""
        automation = self.service.registry.automations.get(name)
        if automation is None or automation.schedule is None:
            raise NotFound(f"schedule automation '{name}' is not in the configuration any more")
        t = self.ticks
        key = (t.c.automation == name, t.c.tick_at == tick)
        at = dt.datetime.now(UTC)
        with write_transaction(self.service.engine) as conn:
            claimed = conn.execute(t.update().where(*key, t.c.finished_at.is_(None),
                                                    leases.free(t, at))
                                   .values(lease_owner=owner, lease_until=leases.lease_end())).rowcount
            last_id = conn.execute(sa.select(t.c.last_id).where(*key)).scalar() if claimed \
                else None
        if not claimed:
            return None
        service = self.service
        entity = service.registry.entities[automation.entity]
        table = service.schema.entities[entity.name]
        last_id = last_id or 0
        try:
            while True:
                with service.engine.connect() as conn:
                    ids = [r[0] for r in conn.execute(
                        sa.select(table.c.id).where(table.c.deleted_at.is_(None),
                                                    table.c.id > last_id)
                        .order_by(table.c.id).limit(500))]
                if not ids:
                    break
                for record_id in ids:
                    if stopping is not None and stopping():
                        self._release_tick(key, owner)
                        return None
                    self._tick_record(automation, entity, tick, key, owner, record_id)
                    last_id = record_id
        except _LeaseLost:
            log.warning("tick %s of %s: the claim expired; the worker that took it over goes "
                        "on from the last record done", tick.isoformat(), name)
            return None
        with write_transaction(service.engine) as conn:
            done = conn.execute(t.update().where(*key, t.c.lease_owner == owner).values(
                finished_at=dt.datetime.now(UTC), lease_owner=None, lease_until=None)
                .returning(t.c.matched, t.c.failed)).first()
        if done is None:
            return None
        return f"{name}: {done.matched} records, {done.failed} failed (tick {tick.isoformat()})"

    def _tick_record(self, automation: Automation, entity: Entity, tick, key, owner: str,
                     record_id: int) -> None:
        """Run the automation on one record and move the tick's checkpoint past it, in one
        transaction; a record that fails is recorded (and passed) in another."""
        service = self.service
        try:
            with write_transaction(service.engine) as conn:
                record = service.get(SYSTEM, entity.name, record_id, conn=conn)
                ran = self.run(conn, SYSTEM, automation, entity, record)
                self._advance(conn, key, owner, record_id, matched=int(ran))
        except _LeaseLost:
            raise
        except (RecordError, EvaluationError, sa.exc.SQLAlchemyError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            if isinstance(exc, RecordError) and exc.fields:
                message += ": " + "; ".join(f"{k}: {', '.join(v)}"
                                            for k, v in exc.fields.items())
            with write_transaction(service.engine) as conn:
                self._advance(conn, key, owner, record_id, failed=1)
                conn.execute(self.failures.insert().values(
                    automation=automation.name, tick_at=tick, entity=entity.name,
                    record_id=record_id, error=message[:2000], at=dt.datetime.now(UTC)))

    def _advance(self, conn, key, owner: str, record_id: int, matched: int = 0,
                 failed: int = 0) -> None:
        t = self.ticks
        moved = conn.execute(t.update().where(*key, t.c.lease_owner == owner).values(
            last_id=record_id, matched=t.c.matched + matched, failed=t.c.failed + failed,
            lease_until=leases.lease_end())).rowcount
        if moved != 1:  # another worker took the tick over: this record's work is undone
            raise _LeaseLost()

    def _release_tick(self, key, owner: str) -> None:
        t = self.ticks
        with write_transaction(self.service.engine) as conn:
            conn.execute(t.update().where(*key, t.c.lease_owner == owner)
                         .values(lease_owner=None, lease_until=None))


def _ask_for_mail(service) -> None:
    """After a commit that wrote notifications to mail: ask for the job that mails them."""
    service.queue.send("notifications.mail")


class _LeaseLost(Exception):
    """The tick's claim passed to another worker; stop without writing."""


def current_tick(automation: Automation, now: dt.datetime) -> dt.datetime | None:
    """The start of the schedule period `now` falls in (UTC)."""
    if automation.schedule_seconds:
        step = automation.schedule_seconds
        start = math.floor(now.timestamp() / step) * step
        return dt.datetime.fromtimestamp(start, UTC)
    if automation.schedule_at:
        hour, minute = (int(p) for p in automation.schedule_at.split(":"))
        today = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        return today if today <= now else today - dt.timedelta(days=1)
    return None


def _evaluate(automation: Automation, assignments, scope: dict, entity: Entity) -> dict:
    values = {}
    for name, expression in assignments.items():
        try:
            values[name] = coerce(entity.fields[name], expression.evaluate(scope))
        except (EvaluationError, Invalid) as exc:
            detail = exc.message.render() if isinstance(exc, Invalid) else str(exc)
            message = f"automation '{automation.name}': {name}: {detail}"
            raise ValidationFailed(message, {"__all__": [message]}) from None
    return values
