"""The import wizard's column mapping: which fields a file may fill, the mapping suggested for a
header (the one remembered for it, else matched by identifier or label), and the server's own
check of a submitted mapping, which never trusts the form.

A mapping is a list with one entry per column of the header: a field identifier, `id` or
`version` (the keys that make a row update a record, as in `crm import`), or "" to ignore the
column.
"""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa

from engine.errors import ValidationFailed
from engine.records.access import Caller
from engine.records.importfiles import REASON_COLUMN
from engine.records.rowplan import writable_fields
from engine.registry.model import SYSTEM_FIELDS, Entity, Field

IGNORE = ""
KEYS = ("id", "version")


class MappingRefused(ValidationFailed):
    """A submitted mapping the server refuses: `problems` holds, per column ("col-<n>"),
    (key, params) pairs that word each reason in the UI's language."""


def targets(service, caller: Caller, entity: Entity) -> dict[str, Field]:
    """The fields a file may fill for this caller: writable, stored, not hidden.

    Left out are computed fields, rollups and autonumbers (the engine fills them), the state
    field of a workflow (only transitions move it), read-only and hidden fields (by
    configuration or by the caller's role), lines, files (never imported: they are uploaded
    on the record's page) and the system fields."""
    access = service.access(caller, entity)
    workflow = service.registry.workflow_by_entity.get(entity.name)
    return {name: fld for name, fld in writable_fields(
                entity, access, workflow.field if workflow else None).items()
            if not fld.hidden and fld.type != "file" and name not in SYSTEM_FIELDS}


def header_key(header: list[str]) -> tuple[str, list[int]]:
    """The key a mapping is remembered under, and the positions of the columns it covers.

    The reason column of a rejected-rows file is left out, so that file, fixed, finds the
    mapping of the file it came from."""
    kept = [i for i, h in enumerate(header) if h.strip() != REASON_COLUMN]
    text = json.dumps([header[i].strip() for i in kept], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), kept


def suggest(offered: dict[str, Field], header: list[str],
            remembered: list[str] | None) -> list[str]:
    """The mapping to show first: the remembered one where it still holds, else by name."""
    by_name: dict[str, str] = {name: name for name in offered}  # identifiers before labels
    for name, fld in offered.items():
        for text in (*fld.label.texts.values(), fld.label.get("en")):
            by_name.setdefault(text.strip().lower(), name)
    for key in KEYS:
        by_name[key] = key
    _, kept = header_key(header)
    mapping = [IGNORE] * len(header)
    taken: set[str] = set()
    for position, i in enumerate(kept):
        if remembered is not None and position < len(remembered):
            target = remembered[position]
            if target == IGNORE or target in offered or target in KEYS:
                mapping[i] = target
                taken.add(target)
                continue
        column = header[i].strip()
        target = by_name.get(column) or by_name.get(column.lower()) or IGNORE
        if target not in taken:
            mapping[i] = target
            taken.add(target)
    return mapping


def check(offered: dict[str, Field], entity: Entity, header: list[str],
          mapping: list[str]) -> list[str]:
    """Return the mapping if every target may be written from a file; refuse it otherwise."""
    problems: dict[str, list[tuple[str, dict]]] = {}
    seen: dict[str, int] = {}
    for i, target in enumerate(mapping):
        column = f"col-{i}"
        if target == IGNORE:
            continue
        if i >= len(header) or header[i].strip() == REASON_COLUMN:
            problems[column] = [("map_reason_column", {})]
        elif target in entity.fields or target in SYSTEM_FIELDS:
            if target not in offered and target not in KEYS:
                problems[column] = [("map_protected", {"field": target})]
        elif target not in KEYS:
            problems[column] = [("map_unknown", {"field": target})]
        if column not in problems:
            if target in seen:
                problems[column] = [("map_twice", {"field": target,
                                                   "column": header[seen[target]]})]
            else:
                seen[target] = i
    if len(mapping) != len(header):
        problems["__all__"] = [("map_shape", {"n": len(header)})]
    elif not problems and not any(t not in KEYS for t in seen):
        problems["__all__"] = [("map_nothing", {})]
    if "version" in seen and "id" not in seen and "__all__" not in problems:
        problems[f"col-{seen['version']}"] = [("map_version_needs_id", {})]
    if problems:
        raise MappingRefused(f"the column mapping is refused: {sorted(problems)}",
                             problems=problems)
    return list(mapping)


def remembered(conn, table: sa.Table, entity: str, header: list[str]) -> list[str] | None:
    """The mapping last saved for this entity and header, or None."""
    key, _ = header_key(header)
    return conn.execute(sa.select(table.c.mapping).where(
        table.c.entity == entity, table.c.header_key == key)).scalar()


def remember(conn, table: sa.Table, entity: str, header: list[str], mapping: list[str],
             user_id: int | None, at) -> None:
    """Keep `mapping` for the next file of this entity with the same header."""
    key, kept = header_key(header)
    values = {"header": [header[i] for i in kept], "mapping": [mapping[i] for i in kept],
              "updated_by": user_id, "updated_at": at}
    done = conn.execute(table.update().where(table.c.entity == entity,
                                             table.c.header_key == key).values(**values))
    if done.rowcount:
        return
    try:
        with conn.begin_nested():
            conn.execute(table.insert().values(entity=entity, header_key=key, **values))
    except sa.exc.IntegrityError:  # another server process saved the same header just now
        conn.execute(table.update().where(table.c.entity == entity,
                                          table.c.header_key == key).values(**values))
