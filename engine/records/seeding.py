"""Sample records from the layers' `seed/` files, loaded through the record service.

In seed files a reference may be written as the referenced record's title (`customer: ACME`)
and `owner` as a username, so that packs can ship readable sample data; records may be placed
directly in a workflow state. Entities are loaded in reference order (customers before the
opportunities that point at them); an entity that had records before seeding started is
skipped, so seeding twice adds nothing (and records that automations create while seeding do
not stop a later entity's seed file).
"""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter
from typing import Iterator

import sqlalchemy as sa

from engine.errors import RecordError
from engine.records.access import SYSTEM
from engine.storage.database import write_transaction
from engine.registry.model import Entity


def _order(service, entities: list[str]) -> list[str]:
    graph = {}
    for name in entities:
        entity = service.registry.entities[name]
        graph[name] = {f.to for f in entity.fields.values()
                       if f.type == "reference" and f.to in entities and f.to != name}
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError:
        return entities


class _Names:
    """The records and users that seed files name by title or username, each looked up once
    per seeding. Only what was found is kept: a title that names nothing yet may name a record
    created later (a customer's parent company, further up the same file). What was found
    stays the answer, as a query would give it: the lowest id among the live records with the
    title, and records created later have higher ids."""

    def __init__(self, conn, service, users):
        self.conn, self.service, self.users = conn, service, users
        self.found: dict[tuple[str, str], int] = {}

    def user(self, username: str):
        key = ("user", username.lower())
        if key not in self.found:
            user_id = self.users.by_username(username)
            if user_id is None:
                return None
            self.found[key] = user_id
        return self.found[key]

    def record(self, target: str, title: str):
        if target == "user":
            return self.user(title)
        key = (target, title)
        if key not in self.found:
            entity = self.service.registry.entities[target]
            table = self.service.schema.entities[target]
            row = self.conn.execute(sa.select(table.c.id).where(
                table.c[entity.title] == title, table.c.deleted_at.is_(None))
                .order_by(table.c.id).limit(1)).first()
            if row is None:
                return title  # left as text: the service reports the bad reference
            self.found[key] = row[0]
        return self.found[key]


def _resolve(service, entity: Entity, record: dict, names: _Names) -> dict:
    values = {}
    for key, value in record.items():
        fld = entity.fields.get(key)
        if key == "owner" and isinstance(value, str):
            value = names.user(value)
        elif fld is not None and fld.type == "reference" and isinstance(value, str) \
                and not value.isdigit():
            value = names.record(fld.to, value)
        elif fld is not None and fld.type == "lines" and isinstance(value, list):
            child = service.registry.entities[fld.child_entity]
            value = [_resolve(service, child, dict(line), names) for line in value]
        values[key] = value
    return values


def _has_records(conn, service, name: str) -> bool:
    table = service.schema.entities[name]
    return conn.execute(sa.select(table.c.id).limit(1)).first() is not None


def load_seeds(service, users) -> Iterator[str]:
    """Load every seed set; yield one line of progress per entity."""
    by_entity: dict[str, list] = {}
    for seed_set in service.registry.seeds:
        by_entity.setdefault(seed_set.entity, []).append(seed_set)
    order = _order(service, list(by_entity))
    # decided before anything is created: a record an automation makes while seeding (a
    # `created` automation of an account creating its first activity) must not make the
    # later entity look seeded already and its seed file skipped
    with service.engine.connect() as conn:
        filled = {name for name in order if _has_records(conn, service, name)}
    for name in order:
        entity = service.registry.entities[name]
        if name in filled:
            yield f"{name}: has records already, skipped"
            continue
        created = 0
        # one transaction per entity: its sample records land together or not at all, and
        # thousands of records do not pay a commit each
        with write_transaction(service.engine) as conn:
            names = _Names(conn, service, users)
            for seed_set in by_entity[name]:
                for i, record in enumerate(seed_set.records):
                    values = _resolve(service, entity, dict(record), names)
                    try:
                        service.create(SYSTEM, name, values, allow_state=True, conn=conn)
                    except RecordError as exc:
                        problems = "; ".join(f"{k}: {', '.join(v)}"
                                             for k, v in exc.fields.items())
                        raise RecordError(f"{seed_set.source}: record {i + 1} of {name} was "
                                          f"refused: {problems or exc.message}") from None
                    created += 1
        yield f"{name}: {created} records"
