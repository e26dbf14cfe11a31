"""Share rows: who may read which record through a sharing rule, kept as rows (`crm_share`).

A rule through an assignment entity (`read: {through: coverage, user: rep, match: {...}}`)
asks "does a live assignment of this user match the record?". Answered at query time, a list
page has to find the user's whole visible set before it can sort and count it. Like the share
rows of Salesforce's sharing recalculation, the answer is kept instead: one row (rule, user,
record) per record a rule gives a user, maintained in the transaction of every write that can
change it (the record's match fields and owner, the assignment's user and match fields, a
delete), so a page walks the index (rule, user, record) and stops after 50 rows and the capped
total counts index entries. A rule's rows exist for every user named by a live assignment,
whatever their roles: a role change needs no maintenance, the role only decides which rule is
asked.

Rules that stay at query time: `where` rules (cheap: a condition on the record), and rules
whose match fields change outside the record service (rollups, computed fields). The `where`
of a rule that has both is applied over its share rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Iterable, Mapping

import sqlalchemy as sa

from engine.registry.model import Entity, Registry, SharingRule
from engine.storage.tables import Schema

UTC = dt.timezone.utc


@dataclass(frozen=True)
class ShareRule:
    """A sharing rule kept as share rows: its key, its entity, the assignment entity and how
    they match; `own` when the rule's records include the owner's (`own: true`, no `where`)."""

    key: int
    entity: str
    through: str
    user: str
    match: tuple[tuple[str, str], ...]  # (assignment field, record field)
    own: bool

    @property
    def label(self) -> str:
        pairs = ", ".join(f"{mine}={theirs}" for mine, theirs in self.match)
        return f"{self.entity} through {self.through}.{self.user} ({pairs})" + \
            (" and own records" if self.own else "")


def _kept_outside_writes(entity: Entity, name: str) -> bool:
    """Whether field `name` can change without a record write (a rollup, or a computed field
    a rollup refresh rewrites): share rows could not follow it."""
    if name == "id":
        return False
    fld = entity.fields.get(name)
    return fld is None or not fld.kind.stored or fld.type == "rollup" or fld.compute is not None


def share_rule(registry: Registry, entity: Entity, rule: SharingRule) -> ShareRule | None:
    """Return the share-row form of `rule` on `entity`, or None when it runs at query time."""
    if rule.through is None or entity.parent:
        return None
    link = registry.entities[rule.through]
    if _kept_outside_writes(link, rule.user) or any(
            _kept_outside_writes(link, mine) or _kept_outside_writes(entity, theirs)
            for mine, theirs in rule.match.items()):
        return None
    match = tuple(sorted(rule.match.items()))
    own = rule.own and rule.where is None  # own records must not pass through the `where`
    text = json.dumps([entity.name, rule.through, rule.user, match, own])
    key = int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "big", signed=True)
    return ShareRule(key, entity.name, rule.through, rule.user, match, own)


def share_rules(registry: Registry) -> dict[int, ShareRule]:
    """Every rule of the registry's roles that is kept as share rows, by key."""
    found: dict[int, ShareRule] = {}
    for role in registry.roles.values():
        for entity_name, access in role.entities.items():
            entity = registry.entities[entity_name]
            for action in ("read", "update", "delete"):
                rule = getattr(access, action)
                if isinstance(rule, SharingRule):
                    kept = share_rule(registry, entity, rule)
                    if kept is not None:
                        found[kept.key] = kept
    return found


def _rows(schema: Schema, rule: ShareRule, records=None, users: Iterable[int] | None = None):
    """SELECT (user_id, record_id) of the share rows of `rule`, for the records for which
    the condition `records` holds and the `users` given (every one when None)."""
    # the assignments aliased: a rule may go through the record's own entity ("tasks of the
    # teams I have a task in"), and `records` is a condition on the records' own table
    table, link = schema.entities[rule.entity], schema.entities[rule.through].alias("link")
    restrict = [] if records is None else [records]
    who = link.c[rule.user]
    via = sa.select(who.label("user_id"), table.c.id.label("record_id")).select_from(
        link.join(table, sa.and_(*[table.c[theirs] == link.c[mine]
                                   for mine, theirs in rule.match]))
    ).where(link.c.deleted_at.is_(None), table.c.deleted_at.is_(None), who.is_not(None),
            *restrict, *([] if users is None else [who.in_(list(users))]))
    if not rule.own:
        return via.distinct()
    owned = sa.select(table.c.owner.label("user_id"), table.c.id.label("record_id")).where(
        table.c.deleted_at.is_(None), table.c.owner.is_not(None), *restrict,
        *([] if users is None else [table.c.owner.in_(list(users))]))
    return sa.union(via, owned)


def _insert(conn, schema: Schema, rule: ShareRule, rows) -> None:
    shares = schema.engine["share"]
    found = rows.subquery()
    conn.execute(shares.insert().from_select(
        ["rule", "user_id", "record_id"],
        sa.select(sa.literal(rule.key, shares.c.rule.type), found.c.user_id, found.c.record_id)))


def rebuild(conn, schema: Schema, rule: ShareRule) -> None:
    """Recompute every share row of `rule` and record it as built."""
    shares, built = schema.engine["share"], schema.engine["share_rule"]
    if conn.dialect.name == "postgresql":
        # writers maintaining share rows wait until the rebuilt rows are committed, so none
        # adds a row the rebuild adds too
        conn.exec_driver_sql("LOCK TABLE crm_share IN SHARE ROW EXCLUSIVE MODE")
    conn.execute(shares.delete().where(shares.c.rule == rule.key))
    _insert(conn, schema, rule, _rows(schema, rule))
    conn.execute(built.delete().where(built.c.rule == rule.key))
    conn.execute(built.insert().values(rule=rule.key, entity=rule.entity, description=rule.label,
                                       built_at=dt.datetime.now(UTC)))


def rebuild_all(engine: sa.Engine, registry: Registry, schema: Schema) -> list[str]:
    """Recompute the rows of every rule in one transaction; return a line per rule with its
    row count (after data was written around the record service: a restore, a raw load)."""
    from engine.storage.database import write_transaction

    lines = []
    with write_transaction(engine) as conn:
        for rule in sorted(share_rules(registry).values(), key=lambda r: r.label):
            rebuild(conn, schema, rule)
            shares = schema.engine["share"]
            count = conn.execute(sa.select(sa.func.count()).select_from(shares)
                                 .where(shares.c.rule == rule.key)).scalar()
            lines.append(f"{rule.label}: {count} rows")
    return lines


def forget(conn, schema: Schema, key: int) -> None:
    """Drop the rows of a rule no role uses any more."""
    shares, built = schema.engine["share"], schema.engine["share_rule"]
    conn.execute(shares.delete().where(shares.c.rule == key))
    conn.execute(built.delete().where(built.c.rule == key))


def share_steps(connection, registry: Registry, schema: Schema) -> list:
    """Return the migration steps that build the rows of new sharing rules and drop those of
    rules no longer configured (a changed rule is a new rule: its key changes)."""
    from engine.storage.migrate import Step

    wanted = share_rules(registry)
    built: set[int] = set()
    if sa.inspect(connection).has_table("crm_share_rule"):
        table = schema.engine["share_rule"]
        built = {row[0] for row in connection.execute(sa.select(table.c.rule))}
    steps = [Step(f"build sharing rows for {rule.label}",
                  lambda ops, conn, r=rule: rebuild(conn, schema, r))
             for key, rule in sorted(wanted.items(), key=lambda kv: kv[1].label)
             if key not in built]
    steps += [Step(f"drop the sharing rows of a rule no longer configured ({key})",
                   lambda ops, conn, k=key: forget(conn, schema, k))
              for key in sorted(built - set(wanted))]
    return steps


class ShareRows:
    """The share rows of one registry: which rules each entity's writes maintain, and the
    statements that keep them current inside the writing transaction."""

    def __init__(self, registry: Registry, schema: Schema):
        self.registry = registry
        self.schema = schema
        self.table = schema.engine["share"]
        self.rules = share_rules(registry)
        self.by_entity: dict[str, list[ShareRule]] = {}
        self.by_link: dict[str, list[ShareRule]] = {}
        for rule in self.rules.values():
            self.by_entity.setdefault(rule.entity, []).append(rule)
            self.by_link.setdefault(rule.through, []).append(rule)
        self._of: dict[tuple[str, int], ShareRule | None] = {}

    def of(self, entity: Entity, rule: SharingRule) -> ShareRule | None:
        """The share-row form of a rule of the registry, or None (query time)."""
        # rules are objects of the immutable registry this object belongs to: their identity
        # is a stable key
        key = (entity.name, id(rule))
        if key not in self._of:
            self._of[key] = share_rule(self.registry, entity, rule)
        return self._of[key]

    def ids(self, rule: ShareRule, user_id):
        """SELECT of the ids of the records `rule` gives the user."""
        return sa.select(self.table.c.record_id).where(
            self.table.c.rule == rule.key, self.table.c.user_id == user_id)

    def written(self, conn, entity_name: str, new: Mapping | None, old: Mapping | None):
        """Bring the share rows up to date after one record was created (old None), changed,
        or deleted (new None), in the writing transaction."""
        for rule in self.by_entity.get(entity_name, ()):
            watched = [theirs for _, theirs in rule.match] + (["owner"] if rule.own else [])
            if new is not None and old is not None and all(
                    new.get(f) == old.get(f) for f in watched):
                continue
            record_id = (new or old)["id"]
            self._lock(conn, rule, [_values(r, [t for _, t in rule.match])
                                    for r in (new, old) if r is not None])
            table = self.schema.entities[rule.entity]
            conn.execute(self.table.delete().where(self.table.c.rule == rule.key,
                                                   self.table.c.record_id == record_id))
            if new is not None:
                _insert(conn, self.schema, rule, _rows(self.schema, rule,
                                                       table.c.id == record_id))
        for rule in self.by_link.get(entity_name, ()):
            self._assignment_written(conn, rule, new, old)

    def created(self, conn, entity_name: str, ids: list[int], records: list[Mapping]):
        """Add the share rows of records created together (bulk import)."""
        for rule in self.by_entity.get(entity_name, ()):
            table = self.schema.entities[rule.entity]
            self._lock(conn, rule, [_values(r, [t for _, t in rule.match]) for r in records])
            _insert(conn, self.schema, rule, _rows(self.schema, rule, table.c.id.in_(ids)))
        for rule in self.by_link.get(entity_name, ()):
            for record in records:
                self._assignment_written(conn, rule, record, None)

    def _assignment_written(self, conn, rule: ShareRule, new, old) -> None:
        mine = [m for m, _ in rule.match]
        if new is not None and old is not None and all(
                new.get(f) == old.get(f) for f in [rule.user, *mine]):
            return
        combos = {_values(r, mine) for r in (new, old) if r is not None} - {None}
        users = {r.get(rule.user) for r in (new, old) if r is not None} - {None}
        if not combos or not users:
            return  # an assignment without a user or a match value shares nothing
        self._lock(conn, rule, combos)
        table = self.schema.entities[rule.entity]
        # the records the assignment matched before or matches now, found by their values
        records = sa.or_(*[sa.and_(*[table.c[theirs] == value
                                     for (_, theirs), value in zip(rule.match, combo)])
                           for combo in combos])
        for user in users:  # one equality per user: the delete seeks (rule, user, record)
            conn.execute(self.table.delete().where(
                self.table.c.rule == rule.key, self.table.c.user_id == user,
                # a deleted record has no share rows; live ones are what the indexes hold
                self.table.c.record_id.in_(sa.select(table.c.id).where(
                    records, table.c.deleted_at.is_(None)))))
        _insert(conn, self.schema, rule, _rows(self.schema, rule, records, users))

    def _lock(self, conn, rule: ShareRule, combos: Iterable[tuple | None]) -> None:
        """On PostgreSQL, serialize the writers of one rule and one set of match values.

        Without it, a transaction adding an assignment and one moving a record into its
        match values could each miss the other's uncommitted row and both commit without
        the share row. Each locks after its own write and reads after the lock (READ
        COMMITTED: every statement sees what committed before it), so the second one sees
        the first. SQLite has one writer at a time (BEGIN IMMEDIATE) and needs nothing."""
        if conn.dialect.name != "postgresql":
            return
        keys = sorted({_lock_key(rule.key, combo) for combo in combos if combo is not None})
        if keys:  # in key order, in one statement: two writers never wait for each other
            conn.execute(sa.text(
                "SELECT pg_advisory_xact_lock(k) FROM "
                "(SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY 1) AS wanted"),
                {"keys": keys})


def _values(record: Mapping, names: list[str]) -> tuple | None:
    """The record's values of `names`, or None when one is empty (it matches nothing)."""
    values = tuple(record.get(name) for name in names)
    return None if any(v is None for v in values) else values


def _lock_key(rule_key: int, combo: tuple) -> int:
    text = json.dumps([rule_key, [str(v) for v in combo]])
    return int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "big", signed=True)
