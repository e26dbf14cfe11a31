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


def _resolve(conn, service, entity: Entity, record: dict, users) -> dict:
    values = {}
    for key, value in record.items():
        fld = entity.fields.get(key)
        if key == "owner" and isinstance(value, str):
            value = users.by_username(value)
        elif fld is not None and fld.type == "reference" and isinstance(value, str) \
                and not value.isdigit():
            value = _by_title(conn, service, fld.to, value, users)
        elif fld is not None and fld.type == "lines" and isinstance(value, list):
            child = service.registry.entities[fld.child_entity]
            value = [_resolve(conn, service, child, dict(line), users) for line in value]
        values[key] = value
    return values


def _by_title(conn, service, target: str, title: str, users):
    if target == "user":
        return users.by_username(title)
    entity = service.registry.entities[target]
    table = service.schema.entities[target]
    row = conn.execute(sa.select(table.c.id).where(table.c[entity.title] == title,
                                                   table.c.deleted_at.is_(None))
                       .order_by(table.c.id).limit(1)).first()
    return row[0] if row else title  # left as text: the service reports the bad reference


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
            for seed_set in by_entity[name]:
                for i, record in enumerate(seed_set.records):
                    values = _resolve(conn, service, entity, dict(record), users)
                    try:
                        service.create(SYSTEM, name, values, allow_state=True, conn=conn)
                    except RecordError as exc:
                        problems = "; ".join(f"{k}: {', '.join(v)}"
                                             for k, v in exc.fields.items())
                        raise RecordError(f"{seed_set.source}: record {i + 1} of {name} was "
                                          f"refused: {problems or exc.message}") from None
                    created += 1
        yield f"{name}: {created} records"
