"""The related lists of a record page: the records of other entities that refer to it."""

from __future__ import annotations

from flask import current_app, url_for

from engine.errors import RecordError
from engine.records.listing import parse_query
from engine.registry.model import Entity, Field
from web.common import display, entity_plural, readable, record_title, site
from web.formfields import input_fields
from web.i18n import t

RELATED_ROWS = 10  # records shown in each related list of a record page


def referrers(entity: Entity) -> list[tuple[Entity, Field]]:
    """The (entity, reference field) pairs whose records can point at `entity`, in registry
    order; child entities are left out, as they are reached only through their parent."""
    registry = site().registry
    # worked out once per registry: the registry never changes while it serves
    cached = current_app.extensions.get("crm_ui_referrers")
    if cached is None or cached[0] is not registry:
        index: dict[str, list[tuple[Entity, Field]]] = {}
        for other in registry.entities.values():
            if other.parent:
                continue
            for fld in other.fields.values():
                if fld.type == "reference" and fld.to != "user":
                    index.setdefault(fld.to, []).append((other, fld))
        cached = current_app.extensions["crm_ui_referrers"] = (registry, index)
    return cached[1].get(entity.name, [])


def related_lists(caller, entity: Entity, record_id: int) -> list[dict]:
    """For each reference to `entity` the caller may read and filter on, the newest
    RELATED_ROWS records pointing at this record, read through the record service's list
    (so its permissions apply), with their count and links to the filtered list and to a
    new record with the reference filled in."""
    loc = caller.locale
    service = site().service
    pairs = [(other, fld) for other, fld in referrers(entity)
             if readable(caller, other) and fld.name not in service.access(caller, other).hidden]
    # the field names the list when the entity refers here in several ways, or to itself
    # (an account's "parent" accounts are not simply "accounts")
    named_by_field = {other.name for other, _ in pairs
                      if other.name == entity.name or
                      sum(1 for o, _ in pairs if o.name == other.name) > 1}
    result = []
    for other, fld in pairs:
        try:
            found = service.list(caller, other.name, parse_query(
                {fld.name: str(record_id), "sort": "-created_at", "limit": str(RELATED_ROWS)}))
        except RecordError:
            continue
        workflow = site().registry.workflow_by_entity.get(other.name)
        state_field = workflow.field if workflow is not None and \
            workflow.field not in service.access(caller, other).hidden else None
        rows = [{"title": record_title(other, r, found.titles, loc),
                 "url": url_for("ui.record_view", entity=other.name, record_id=r["id"]),
                 "state": display(other, state_field, r.get(state_field), {}, loc)
                 if state_field else ""}
                for r in found.data]
        title = entity_plural(other, loc)
        if other.name in named_by_field:
            title = f"{title} · {fld.label.get(loc)}"
        may_create = service.access(caller, other).create is not None and \
            any(f.name == fld.name for f in input_fields(caller, other))
        result.append({
            "key": f"{other.name}-{fld.name}", "title": title, "rows": rows,
            "count": t("total", loc, n=f"{found.total}+") if found.total_capped else
            t("total_one", loc) if found.total == 1 else t("total", loc, n=found.total),
            "all_url": url_for("ui.list_view", entity=other.name, **{fld.name: record_id}),
            "new_url": url_for("ui.new_record", entity=other.name, **{fld.name: record_id})
            if may_create else None})
    return result
