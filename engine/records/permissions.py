"""Who may do what to which records: the row conditions and checks of the record service.

A mixin of `RecordService` (engine/records/service.py); its methods read the service's
registry, schema and access cache.
"""

from __future__ import annotations

from typing import Mapping

import sqlalchemy as sa

from engine.errors import Forbidden, NotFound
from engine.records.access import Access, Caller, access_for
from engine.records.messages import ACTIONS, text
from engine.registry.model import Entity
from engine.storage.sqlexpr import to_sql


class Permissions:
    """The access checks of `RecordService`: grants, row conditions, and the errors a denied
    or unreadable record raises."""

    def access(self, caller: Caller, entity: Entity) -> Access:
        # grants follow from the roles alone, and the registry never changes: worked out once
        key = (caller.system, tuple(caller.roles), entity.name)
        found = self._access.get(key)
        if found is None:
            found = self._access[key] = access_for(self.registry, caller, entity)
        return found

    def read_condition(self, caller: Caller, entity: Entity, table=None, record_id=None):
        """The SQL condition for records of `entity` the caller may read; given `record_id`,
        shaped for that one record (a query about one record passes it)."""
        table = table if table is not None else self.schema.entities[entity.name]
        kept = None if record_id is None else self.share_walk(caller, entity)
        if kept is not None:
            # one probe of the share rows' key; `id IN (share rows)` would make SQLite list
            # the caller's whole set first
            return sa.and_(table.c.deleted_at.is_(None), self._shared(kept, caller, record_id))
        rows = self.row_condition(caller, entity, "read", table)
        live = table.c.deleted_at.is_(None)
        return live if rows is None else sa.and_(live, rows)

    def row_condition(self, caller: Caller, entity: Entity, action: str, table=None):
        """The SQL condition on records of `entity` that `action` (read, update, delete) is
        granted for: None for every record, false() for none. Child entities follow their
        parent, which is checked where the parent is read."""
        table = table if table is not None else self.schema.entities[entity.name]
        access = self.access(caller, entity)
        grant = getattr(access, action)
        if grant is None:
            return sa.false()
        if grant == "all" or entity.parent:
            return None
        if grant == "own":
            return table.c.owner == caller.user_id
        rules = access.rules[action]
        owned = action in access.owned
        if len(rules) == 1 and not owned and rules[0].through is None:
            return self._where_condition(caller, entity, rules[0], table)  # a plain filter
        walk = self.share_walk(caller, entity, action)
        if walk is not None:
            return table.c.id.in_(self.shares.ids(walk, caller.user_id))
        # the ids each rule (and ownership) finds, each its own index-driven query; an OR of
        # the conditions would make the database test every record instead
        rows = table.alias()
        found = [self._shared_ids(caller, entity, rule, rows) for rule in rules]
        kept = [self.shares.of(entity, rule) for rule in rules]
        if owned and not any(k is not None and k.own for k in kept):
            found.append(sa.select(rows.c.id).where(rows.c.owner == caller.user_id,
                                                    rows.c.deleted_at.is_(None)))
        return table.c.id.in_(found[0] if len(found) == 1 else sa.union_all(*found))

    def share_walk(self, caller: Caller, entity: Entity, action: str = "read"):
        """The share rule whose rows are exactly the records `action` is granted for (one rule
        through an assignment, without `where`, with ownership folded in where it counts), or
        None. A list then walks the share rows in record order and counts them."""
        access = self.access(caller, entity)
        if getattr(access, action) != "rule" or entity.parent:
            return None
        rules = access.rules[action]
        if len(rules) != 1 or rules[0].where is not None:
            return None
        kept = self.shares.of(entity, rules[0])
        if kept is None or (action in access.owned and not kept.own):
            return None
        return kept

    def _shared(self, kept, caller: Caller, record_id):
        """EXISTS: the share rows of rule `kept` give the caller record `record_id`."""
        shares = self.shares.table
        return sa.exists().where(shares.c.rule == kept.key, shares.c.user_id == caller.user_id,
                                 shares.c.record_id == record_id)

    def _where_condition(self, caller: Caller, entity: Entity, rule, table):
        return to_sql(rule.where.source, entity, self.registry, self.schema, table=table,
                      user=caller.scope())

    def _shared_ids(self, caller: Caller, entity: Entity, rule, rows):
        """SELECT of the ids of the live records a sharing rule gives the caller: its share
        rows where it has them (with its `where` over them), else, through an assignment
        entity, a join from the caller's assignments outward by their `match` fields."""
        conditions = [rows.c.deleted_at.is_(None)]
        if rule.where is not None:
            conditions.append(self._where_condition(caller, entity, rule, rows))
        if rule.through is None:
            return sa.select(rows.c.id).where(*conditions)
        kept = self.shares.of(entity, rule)
        if kept is not None:
            shared = self.shares.ids(kept, caller.user_id)
            return shared if rule.where is None else \
                sa.select(rows.c.id).where(rows.c.id.in_(shared), *conditions)
        link = self.schema.entities[rule.through].alias()
        joined = link.join(rows, sa.and_(*[rows.c[theirs] == link.c[mine]
                                           for mine, theirs in rule.match.items()]))
        return sa.select(rows.c.id).select_from(joined).where(
            link.c[rule.user] == caller.user_id, link.c.deleted_at.is_(None), *conditions)

    def allows(self, caller: Caller, entity: Entity, record: Mapping, action: str,
               conn=None) -> bool:
        """Whether `action` (read, update, delete) is granted on `record`, as the engine read
        it: the condition of `row_condition`, answered without a query where it can be."""
        access = self.access(caller, entity)
        grant = getattr(access, action)
        if action != "read" and not self.allows(caller, entity, record, "read", conn):
            return False
        if grant is None:
            return False
        if grant == "all" or entity.parent:
            return True
        if grant == "own":
            return record["owner"] == caller.user_id
        if action in access.owned and record["owner"] == caller.user_id:
            return True
        if conn is None:
            with self.engine.connect() as conn:
                return self._rule_holds(conn, caller, entity, record["id"], action)
        return self._rule_holds(conn, caller, entity, record["id"], action)

    def _rule_holds(self, conn, caller: Caller, entity: Entity, record_id: int,
                    action: str) -> bool:
        kept = self.share_walk(caller, entity, action)
        if kept is not None:  # one probe, as in `read_condition`
            return conn.execute(sa.select(self._shared(kept, caller, record_id))).scalar()
        table = self.schema.entities[entity.name]
        return conn.execute(sa.select(table.c.id).where(
            table.c.id == record_id, self.row_condition(caller, entity, action, table))
        ).first() is not None

    def _deny(self, caller: Caller, entity: Entity, action: str) -> Forbidden:
        verb = ACTIONS[action].get(caller.locale, ACTIONS[action]["en"])
        return Forbidden(text("forbidden", caller.locale, action=verb,
                              entity=entity.label.get(caller.locale)))

    def _not_found(self, caller: Caller, entity: Entity, record_id) -> NotFound:
        return NotFound(text("not_found", caller.locale, entity=entity.label.get(caller.locale),
                             id=record_id))

    def readable(self, caller: Caller, entity: Entity, record: Mapping, conn=None) -> bool:
        """Whether `caller` may read `record` (read as the engine): what `get` would answer."""
        return self.allows(caller, entity, record, "read", conn)

    def _check_row_access(self, caller: Caller, entity: Entity, record: dict, action: str,
                          conn=None):
        if not self.readable(caller, entity, record, conn):
            raise self._not_found(caller, entity, record["id"])
        if action in ("update", "delete"):
            allowed = self.allows(caller, entity, record, action, conn)
        else:
            grant = getattr(self.access(caller, entity), action)
            allowed = grant == "all" or (grant == "own" and record["owner"] == caller.user_id)
        if not allowed:
            raise self._deny(caller, entity, action)
