"""Automations (DSL §5b): event automations inside the triggering transaction, schedule
automations once per tick, and in-app notifications.

Event automations run in the transaction of the change that triggered them, so their
effects commit or roll back with it. A change an automation makes to a record it is already
handling does not trigger automations of that record again (loop safety); changes to other
records do, up to a fixed depth. Actions run as the engine on behalf of the user who made the
change: a `transition` action skips the transition's roles but not its guard.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace

import sqlalchemy as sa

from engine.errors import Conflict, RecordError, ValidationFailed
from engine.expr import EvaluationError
from engine.records.access import SYSTEM, Caller
from engine.records.values import Invalid, coerce
from engine.registry.model import Action, Automation, Entity
from engine.storage.database import write_transaction

UTC = dt.timezone.utc
MAX_DEPTH = 8
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
        conn.execute(self.notifications.insert(), [{
            "user_id": user_id, "message": action.message.as_dict(),
            "title": action.title.as_dict() if action.title else None,
            "entity": entity.name, "record_id": record.get("id"), "created_at": stamp}
            for user_id in user_ids])

    # ------------------------------------------------------------------ schedules

    def run_due(self, now: dt.datetime | None = None) -> list[str]:
        """Run every schedule automation whose current tick has not run yet; one line each."""
        now = now or dt.datetime.now(UTC)
        report = []
        for automation in self.scheduled:
            tick = current_tick(automation, now)
            if tick is None or not self._claim(automation, tick, now):
                continue
            matched, failed = self._run_tick(automation, tick)
            with write_transaction(self.service.engine) as conn:
                conn.execute(self.ticks.update().where(
                    self.ticks.c.automation == automation.name, self.ticks.c.tick_at == tick)
                    .values(finished_at=dt.datetime.now(UTC), matched=matched, failed=failed))
            report.append(f"{automation.name}: {matched} records, {failed} failed "
                          f"(tick {tick.isoformat()})")
        return report

    def _claim(self, automation: Automation, tick: dt.datetime, now: dt.datetime) -> bool:
        """Claim a tick in the database, so that no two processes run it."""
        try:
            with write_transaction(self.service.engine) as conn:
                conn.execute(self.ticks.insert().values(
                    automation=automation.name, tick_at=tick, started_at=now, matched=0,
                    failed=0))
            return True
        except sa.exc.IntegrityError:
            return False

    def _run_tick(self, automation: Automation, tick: dt.datetime) -> tuple[int, int]:
        service = self.service
        entity = service.registry.entities[automation.entity]
        table = service.schema.entities[entity.name]
        matched = failed = 0
        last_id = 0
        while True:
            with service.engine.connect() as conn:
                ids = [r[0] for r in conn.execute(
                    sa.select(table.c.id).where(table.c.deleted_at.is_(None),
                                                table.c.id > last_id)
                    .order_by(table.c.id).limit(500))]
            if not ids:
                return matched, failed
            last_id = ids[-1]
            for record_id in ids:
                try:
                    with write_transaction(service.engine) as conn:
                        record = service.get(SYSTEM, entity.name, record_id, conn=conn)
                        if self.run(conn, SYSTEM, automation, entity, record):
                            matched += 1
                except (RecordError, EvaluationError, sa.exc.SQLAlchemyError) as exc:
                    failed += 1
                    message = getattr(exc, "message", None) or str(exc)
                    if isinstance(exc, RecordError) and exc.fields:
                        message += ": " + "; ".join(f"{k}: {', '.join(v)}"
                                                    for k, v in exc.fields.items())
                    with write_transaction(service.engine) as conn:
                        conn.execute(self.failures.insert().values(
                            automation=automation.name, tick_at=tick, entity=entity.name,
                            record_id=record_id, error=message[:2000],
                            at=dt.datetime.now(UTC)))


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
