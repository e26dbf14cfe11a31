"""Firing workflow transitions through the record service (DSL §5, API.md).

Checks run in the order API.md fixes: an unknown transition is NotFound (404), a role that may
not fire it Forbidden (403), a state it cannot leave from Conflict (409), and a missing
required field or a false guard ValidationFailed (422). The request's own values, the state
change, `create` records, `set` assignments and the audit entry are one transaction.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from engine.errors import Conflict, Forbidden, NotFound, RecordError, ValidationFailed
from engine.expr import EvaluationError, to_cel
from engine.records.access import SYSTEM, Caller
from engine.records.messages import text
from engine.records.values import Invalid, coerce
from engine.registry.model import Entity, Transition, Workflow
from engine.storage.database import write_transaction
from engine.workflow import StateMachines


class Transitions:
    """Fires transitions for one RecordService."""

    def __init__(self, service):
        self.service = service
        self.machines = StateMachines(service.registry)
        self._acting: dict[Caller, Caller] = {}

    def _workflow(self, caller: Caller, entity: Entity) -> Workflow:
        workflow = self.service.registry.workflow_by_entity.get(entity.name)
        if workflow is None:
            raise NotFound(text("no_transition", caller.locale,
                                entity=entity.label.get(caller.locale), name="?"))
        return workflow

    def may_fire(self, caller: Caller, entity: Entity, record: dict,
                 transition: Transition, conn=None) -> bool:
        """Whether the caller's roles let them fire `transition` on `record`."""
        if caller.is_admin:
            return True
        if transition.roles:
            return any(role in caller.roles for role in transition.roles)
        return self.service.allows(caller, entity, record, "update", conn)

    def available(self, caller: Caller, entity_name: str, record_id) -> list[dict]:
        """The transitions the caller may fire from the record's current state."""
        entity = self.service.entity(entity_name)
        self.service.get(caller, entity_name, record_id, with_lines=False)  # 404 if unreadable
        record = self.service.get(SYSTEM, entity_name, record_id)
        workflow = self._workflow(caller, entity)
        state = record.get(workflow.field)
        result = []
        with self.service.engine.connect() as conn:
            scope = self.service._scope(conn, caller, entity, record)
            mover = self._moved_by(conn, entity, record)
        for transition in workflow.transitions.values():
            if not self.machines.allowed(workflow, transition, state):
                continue
            if not self.may_fire(caller, entity, record, transition):
                continue
            if transition.forbid_self_approval and mover == caller.user_id:
                continue
            ready = all(_filled(record.get(f)) for f in transition.require)
            if ready and transition.guard is not None:
                try:
                    ready = transition.guard.test(scope)
                except EvaluationError:
                    ready = False
            result.append({"name": transition.name,
                           "label": transition.label.get(caller.locale),
                           "to": transition.target, "require": list(transition.require),
                           "ready": ready})
        return result

    def fire(self, caller: Caller, entity_name: str, record_id, name: str,
             data: Mapping[str, Any] | None = None, version=None, *, conn=None) -> dict:
        """Fire transition `name` on a record, first setting the fields in `data`."""
        service = self.service
        entity = service.entity(entity_name)
        if entity.parent:
            raise NotFound(f"no entity '{entity_name}'")
        if conn is None:
            with write_transaction(service.engine) as conn:
                return self.fire(caller, entity_name, record_id, name, data, version, conn=conn)
        data = dict(data or {})
        version = data.pop("version", version)
        workflow = self._workflow(caller, entity)
        # the whole record: require, guard and computed fields see fields hidden from the caller
        current = service.get(SYSTEM, entity.name, record_id, conn=conn)
        if not service.readable(caller, entity, current, conn):
            raise service._not_found(caller, entity, record_id)
        transition = workflow.transitions.get(name)
        loc = caller.locale
        if transition is None:
            raise NotFound(text("no_transition", loc, entity=entity.label.get(loc), name=name))
        label = transition.label.get(loc)
        if not self.may_fire(caller, entity, current, transition, conn):
            raise Forbidden(text("transition_role", loc, label=label))
        if transition.forbid_self_approval and self._moved_by(conn, entity, current) == \
                caller.user_id:
            raise Forbidden(text("self_approval", loc, label=label))
        state = current.get(workflow.field)
        if not self.machines.allowed(workflow, transition, state):
            state_label = workflow.states[state].label.get(loc) if state in workflow.states \
                else str(state)
            raise Conflict(text("transition_state", loc, label=label, state=state_label))
        if version is not None and version != "":
            if service._version(caller, version) != current["version"]:
                raise Conflict(text("conflict", loc, current=current["version"]),
                               current_version=current["version"])

        # the request's own values first, checked like any update by this caller
        values, lines = {}, {}
        if data:
            service._check_row_access(caller, entity, current, "update", conn)
            access = service.access(caller, entity)
            values, lines, errors = service._prepare(conn, caller, entity, access, data, current)
            service._raise(caller, errors)
        merged = {**current, **values}
        missing = {f: [text("required", loc)] for f in transition.require
                   if not _filled(merged.get(f))}
        if missing:
            raise ValidationFailed(text("invalid_fields", loc, n=len(missing))
                                   if len(missing) > 1 else text("invalid_field", loc), missing)
        scope = service._scope(conn, caller, entity, merged) \
            if transition.guard is not None or transition.set or transition.create else {}
        if transition.guard is not None:
            try:
                ok = transition.guard.test(scope)
                detail = None
            except EvaluationError as exc:
                ok, detail = False, str(exc)
            if not ok:
                message = text("guard_failed", loc, label=label, guard=transition.guard.source) \
                    if detail is None else text("guard_error", loc, label=label,
                                                guard=transition.guard.source, detail=detail)
                raise ValidationFailed(message, {"__all__": [message]})

        acting = self._acting_for(caller)
        for spec in transition.create:
            created_entity = service.registry.entities[spec.entity]
            new_values = self._evaluate(spec.values, scope, created_entity, label, loc)
            try:
                created = service.create(acting, spec.entity, new_values, conn=conn)
            except RecordError as exc:
                detail = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.fields.items()) \
                    or exc.message
                message = text("create_failed", loc, label=label,
                               entity=created_entity.label.get(loc), detail=detail)
                raise ValidationFailed(message, {"__all__": [message]}) from None
            if spec.alias:
                scope[spec.alias] = {k: to_cel(v) for k, v in created.items()
                                     if not isinstance(v, list)}
        if transition.create:
            # the records just created may have changed this record's rollups (a customer's
            # count of orders) and so its computed fields: save over the record as it is now
            current = service.get(SYSTEM, entity.name, current["id"], conn=conn)
            scope.update({n: to_cel(current.get(n)) for n, f in entity.fields.items()
                          if f.type == "rollup" or (f.compute is not None and n not in values)})
        values.update(self._evaluate(transition.set, scope, entity, label, loc))
        values[workflow.field] = transition.target
        # set and the new state are the engine's doing: prepared again as the engine, so that
        # computed fields follow them and validation rules hold for the record as it will be
        given = {k: v for k, v in values.items()
                 if k in entity.fields and entity.fields[k].kind.writable
                 and entity.fields[k].compute is None}
        final, _, errors = service._prepare(conn, acting, entity, service.access(acting, entity),
                                            given, current, allow_state=True, trusted=True)
        service._raise(caller, errors)
        return service._save(conn, caller, entity, current, final, lines,
                             f"transition:{transition.name}")

    def _acting_for(self, caller: Caller) -> Caller:
        """The caller with the engine's rights, for what a transition itself does."""
        try:
            acting = self._acting.get(caller)
        except TypeError:  # a caller built with a list of roles is not hashable
            return replace(caller, roles=tuple(caller.roles) + ("admin",), system=True)
        if acting is None:
            if len(self._acting) > 10_000:  # one entry per distinct caller: keep it bounded
                self._acting.clear()
            acting = self._acting[caller] = replace(
                caller, roles=tuple(caller.roles) + ("admin",), system=True)
        return acting

    def _moved_by(self, conn, entity: Entity, record: dict):
        """The user whose transition put the record in its current state (else its creator)."""
        import sqlalchemy as sa
        audit = self.service.audit
        row = conn.execute(sa.select(audit.c.user_id).where(
            audit.c.entity == entity.name, audit.c.record_id == record["id"],
            audit.c.action.like("transition:%")).order_by(audit.c.id.desc()).limit(1)).first()
        return row[0] if row else record.get("created_by")

    @staticmethod
    def _evaluate(assignments, scope, entity: Entity, label: str, loc: str) -> dict:
        values = {}
        for field_name, expression in assignments.items():
            field = entity.fields[field_name]
            try:
                values[field_name] = coerce(field, expression.evaluate(scope))
            except (EvaluationError, Invalid) as exc:
                detail = exc.message.render(loc) if isinstance(exc, Invalid) else str(exc)
                message = text("guard_error", loc, label=label, guard=expression.source,
                               detail=f"{field_name}: {detail}")
                raise ValidationFailed(message, {"__all__": [message]}) from None
        return values


def _filled(value) -> bool:
    return value is not None and value != "" and value != []
