"""The audit trail of records as the record service shows it.

A mixin of `RecordService` (engine/records/service.py); the entries themselves are written by
the service's `_audit`.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.errors import BadRequest
from engine.records.access import SYSTEM, Caller
from engine.records.values import to_json
from engine.registry.model import Entity


class History:
    """The history of `RecordService`: a record's audit entries, newest first."""

    def history(self, caller: Caller, entity_name: str, record_id, *, limit: int = 50,
                cursor: str | None = None) -> tuple[list[dict], str | None]:
        """Return the audit trail of a readable record, newest first, one page at a time."""
        entity = self.entity(entity_name)
        record = self.get(caller, entity_name, record_id)
        hidden = self.access(caller, entity).hidden
        query = sa.select(self.audit).where(self.audit.c.entity == entity.name,
                                            self.audit.c.record_id == record["id"])
        if cursor:
            try:
                query = query.where(self.audit.c.id < int(cursor))
            except ValueError:
                raise BadRequest("cursor: is not a cursor of this history",
                                 {"cursor": ["is not a cursor of this history"]}) from None
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(self.audit.c.id.desc()).limit(limit + 1)).all()
            created = {row.id: self._creation_values(conn, entity, record["id"], row.id)
                       for row in rows[:limit] if row.action == "create" and not row.changes}
        entries = [{"at": to_json(None, row.at), "user": row.user_id, "action": row.action,
                    "changes": {k: v for k, v in (created.get(row.id) or row.changes or {}).items()
                                if k not in hidden}}
                   for row in rows[:limit]]
        next_cursor = str(rows[limit - 1].id) if len(rows) > limit else None
        return entries, next_cursor

    def _creation_values(self, conn, entity: Entity, record_id: int, audit_id: int) -> dict:
        """The values a record was created with, as a creation entry shows them.

        A creation entry stores no values: they are the record's own columns, and every later
        change of an entered field is audited with its old value. So the record as it is now,
        with each later change undone newest first, is the record as it was created. Computed
        and rollup fields are left out: they follow other records and are not audited.
        """
        def entered(name: str) -> bool:
            fld = entity.fields.get(name)
            return name == "owner" or (fld is not None and fld.track and fld.compute is None
                                       and fld.type != "rollup")

        record = self.get(SYSTEM, entity.name, record_id, conn=conn)
        state = {name: change[1] for name, change in self._changes(entity, {}, record).items()
                 if entered(name)}
        later = conn.execute(
            sa.select(self.audit.c.changes).where(
                self.audit.c.entity == entity.name, self.audit.c.record_id == record_id,
                self.audit.c.id > audit_id).order_by(self.audit.c.id.desc()))
        for (changes,) in later:
            for name, (old, _new) in (changes or {}).items():
                if entered(name):
                    state[name] = old
        return {name: [None, value] for name, value in state.items()
                if value not in (None, [])}
