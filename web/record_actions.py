"""Owner change and deletion from the record page.

Both go through the record service like every other write. The page offers a form only when
the caller's grants suggest it would be accepted; the service still decides, and its refusal
is shown on the record page in the caller's language.
"""

from __future__ import annotations

from flask import Flask, flash, g, redirect, request, url_for

from engine.errors import RecordError
from engine.registry.model import Entity
from web.common import entity_for, field_of, record_title, site, titles_for
from web.formbuild import general_errors
from web.i18n import t
from web.ui import record_page, ui


def setup(app: Flask) -> None:
    """Let the record page ask which of these actions to offer (see `record_actions`)."""
    app.jinja_env.globals["record_actions"] = record_actions


def granted(grant: str | None, record: dict, caller) -> bool:
    """Whether a grant may cover this record for the caller, judged without a query: a
    sharing rule counts as yes (a hint only: the service decides when the action is done)."""
    return grant in ("all", "rule") or (grant == "own" and record.get("owner") == caller.user_id)


def record_actions(entity: Entity, record: dict) -> dict:
    """What the record page offers besides editing: owner choices (None: no form), delete."""
    caller = g.caller
    access = site().service.access(caller, entity)
    # the service changes an owner only for a caller who may also update this record
    service = site().service
    may_change_owner = access.change_owner is not None and \
        service.allows(caller, entity, record, "update")
    return {"owner": record.get("owner"),
            "owner_choices": owner_choices(record.get("owner")) if may_change_owner else None,
            "can_delete": service.allows(caller, entity, record, "delete")}


def owner_choices(current) -> list[tuple[str, str]]:
    """(user id, name) of every active user, plus the current owner if no longer active."""
    found = [(str(u["id"]), u["display_name"] or u["username"]) for u in site().active_users()]
    if current is not None and str(current) not in {value for value, _ in found}:
        found.append((str(current), f"#{current}"))
    return found


def shown_title(entity: Entity, record: dict) -> str:
    """The record as a person names it in a message: its title as on its page, else #id."""
    caller = g.caller
    titles = titles_for(caller, entity, [record], [entity.title]) \
        if entity.title in record and field_of(entity, entity.title).type == "reference" else {}
    return record_title(entity, record, titles, caller.locale)


def refusal(entity: Entity, exc: RecordError, locale: str) -> list[str]:
    """The service's refusal as lines for a person, the owner named by its UI label."""
    if "owner" in exc.fields:
        return [f"{t('owner', locale)}: {m}" for m in exc.fields["owner"]]
    return general_errors(entity, exc, set(), locale)


@ui.post("/<entity>/<int:record_id>/owner")
def change_owner(entity, record_id):
    ent = entity_for(entity)
    caller, loc = g.caller, g.caller.locale
    service = site().service
    current = service.get(caller, ent.name, record_id, with_lines=False)
    chosen = request.form.get("owner", "").strip() or None
    if chosen == (None if current.get("owner") is None else str(current["owner"])):
        # nothing to change: writing would only add a version and an empty history entry
        return redirect(url_for("ui.record_view", entity=ent.name, record_id=record_id))
    try:
        service.update(caller, ent.name, record_id, {"owner": chosen},
                       request.form.get("version"))
    except RecordError as exc:
        if exc.status == 404:
            raise
        return record_page(ent, record_id, status=exc.status,
                           top_errors=refusal(ent, exc, loc))
    flash(t("owner_changed", loc), "success")
    return redirect(url_for("ui.record_view", entity=ent.name, record_id=record_id))


@ui.post("/<entity>/<int:record_id>/delete")
def delete_record(entity, record_id):
    ent = entity_for(entity)
    caller, loc = g.caller, g.caller.locale
    service = site().service
    title = shown_title(ent, service.get(caller, ent.name, record_id, with_lines=False))
    try:
        service.delete(caller, ent.name, record_id, request.form.get("version"))
    except RecordError as exc:
        if exc.status == 404:
            raise
        return record_page(ent, record_id, status=exc.status,
                           top_errors=[t("delete_refused", loc, reason=line)
                                       for line in refusal(ent, exc, loc)])
    flash(t("deleted", loc, entity=ent.label.get(loc), title=title), "success")
    return redirect(url_for("ui.list_view", entity=ent.name))
