"""The kanban board of a workflow: one column per state, one card per readable record.

A card moves by firing a workflow transition through the record service, like the buttons of
the record page: chosen on the card (a plain POST form that works without JavaScript), or
found from the column the card was dropped on (static/kanban.js submits the same form with
the target state). The service decides; its refusal is shown on the board in the caller's
language.
"""

from __future__ import annotations

from flask import Flask, flash, g, redirect, request, url_for

from engine.errors import BadRequest, Conflict, Forbidden, NotFound, RecordError
from engine.records.listing import parse_query
from engine.registry.model import SYSTEM_FIELDS, Entity, Transition, Workflow
from web.common import display, entity_for, entity_plural, field_label, site
from web.formbuild import general_errors
from web.i18n import t
from web.record_actions import granted, shown_title
from web.ui import page, ui

CARDS_PER_COLUMN = 50
CARD_DETAILS = 2  # list columns shown on a card under its title


def setup(app: Flask) -> None:
    """Let the list page link to the board (see `board_url`)."""
    app.jinja_env.globals["board_url"] = board_url


def board_url(entity: Entity) -> str | None:
    """The address of the entity's board, or None when it has no workflow."""
    if entity.name not in site().registry.workflow_by_entity:
        return None
    return url_for("ui.board_view", entity=entity.name)


def workflow_of(entity: Entity) -> Workflow:
    workflow = site().registry.workflow_by_entity.get(entity.name)
    if workflow is None:
        raise NotFound(t("error_404", g.caller.locale))
    return workflow


def state_label(workflow: Workflow, state, locale: str) -> str:
    return workflow.states[state].label.get(locale) if state in workflow.states else str(state)


# ---------------------------------------------------------------- the board

@ui.get("/<entity>/board")
def board_view(entity):
    return board_page(entity_for(entity))


def may_offer(caller, access, transition: Transition, record: dict) -> bool:
    """Whether to offer `transition` on a card, judged from the caller's roles and grants.

    Asking the service for every card's exact choices would cost it a few queries per card;
    it still decides when the move is fired, and says why it refuses.
    """
    if caller.is_admin:
        return True
    if transition.roles:
        return any(role in caller.roles for role in transition.roles)
    return granted(access.update, record, caller)


def card_fields(entity: Entity, workflow: Workflow, access) -> tuple[list[str], list[str]]:
    """(fields to list, details shown under the title): only stored fields the caller reads."""
    def listable(name: str) -> bool:
        if name in SYSTEM_FIELDS:
            return name != "deleted_at"
        fld = entity.fields.get(name)
        return fld is not None and fld.kind.stored and fld.type != "lines" \
            and name not in access.hidden

    details = [n for n in entity.list_columns
               if n not in (entity.title, workflow.field) and listable(n)][:CARD_DETAILS]
    wanted = [n for n in dict.fromkeys([entity.title, *details, "owner"]) if listable(n)]
    return wanted, details


def board_columns(entity: Entity, workflow: Workflow) -> list[dict]:
    """The workflow's states in their configured order, each with its count and first cards."""
    caller, loc = g.caller, g.caller.locale
    service = site().service
    access = service.access(caller, entity)
    wanted, details = card_fields(entity, workflow, access)
    columns = []
    for state in workflow.states.values():
        result = service.list(caller, entity.name, parse_query({
            workflow.field: state.name, "limit": str(CARDS_PER_COLUMN),
            "fields": ",".join(wanted)}))
        cards = []
        for record in result.data:
            title = display(entity, entity.title, record.get(entity.title), result.titles, loc) \
                if entity.title in record else ""
            cards.append({
                "id": record["id"], "version": record["version"],
                "title": title or f"#{record['id']}",
                "details": [{"label": field_label(entity, n, loc),
                             "value": display(entity, n, record.get(n), result.titles, loc,
                                              record)}
                            for n in details if record.get(n) not in (None, "", [])],
                "moves": [(tr.name, f"{tr.label.get(loc)} → "
                                    f"{state_label(workflow, tr.target, loc)}")
                          for tr in workflow.transitions_from(state.name)
                          if may_offer(caller, access, tr, record)]})
        columns.append({"state": state.name, "label": state.label.get(loc),
                        "count": result.total, "capped": result.total_capped, "cards": cards})
    return columns


def board_page(entity: Entity, *, status: int = 200, problem: dict | None = None,
               choice: dict | None = None):
    workflow = workflow_of(entity)
    columns = board_columns(entity, workflow)
    return page("board.html", status, entity=entity, workflow=workflow,
                title=f"{entity_plural(entity, g.caller.locale)} · "
                      f"{workflow.label.get(g.caller.locale)}",
                columns=columns, problem=problem, choice=choice,
                can_move=any(card["moves"] for col in columns for card in col["cards"]))


# ---------------------------------------------------------------- moving a card

@ui.post("/<entity>/board/<int:record_id>")
def board_move(entity, record_id):
    """Fire the transition chosen on a card, or the one leading to the column it was dropped on."""
    ent = entity_for(entity)
    workflow = workflow_of(ent)
    caller, loc = g.caller, g.caller.locale
    version = request.form.get("version")
    target = request.form.get("to", "").strip()
    try:
        if target:
            options = transitions_to(ent, workflow, record_id, target)
            if not options:  # dropped back on its own column: nothing to do
                return redirect(url_for("ui.board_view", entity=ent.name))
            if len(options) > 1:
                return board_page(ent, choice=choice_of(ent, workflow, record_id, target,
                                                        options, version))
            name = options[0][0]
        else:
            name = request.form.get("transition", "").strip()
            if not name:
                raise BadRequest(t("choose_move", loc))
        record = site().service.transition(caller, ent.name, record_id, name, {}, version)
    except RecordError as exc:
        return board_page(ent, status=exc.status, problem=problem_of(ent, record_id, exc))
    flash(t("moved", loc, title=shown_title(ent, record),
            state=state_label(workflow, record.get(workflow.field), loc)), "success")
    return redirect(url_for("ui.board_view", entity=ent.name))


def transitions_to(entity: Entity, workflow: Workflow, record_id: int,
                   target: str) -> list[tuple[str, str]]:
    """The transitions, as (name, label), that would move a record to state `target`.

    One is fired; several are offered to the person to choose from; none means the record is
    already in `target` and nothing leads from there back to it. Raises when no transition
    leads from the record's state to `target`, or none the caller may fire.
    """
    caller, loc = g.caller, g.caller.locale
    service = site().service
    if target not in workflow.states:
        raise BadRequest(t("unknown_state", loc, state=target))
    record = service.get(caller, entity.name, record_id, with_lines=False)
    source = record.get(workflow.field)
    permitted = [(c["name"], c["label"]) for c in service.transitions(caller, entity.name,
                                                                       record_id)
                 if c["to"] == target]
    if permitted:
        return permitted
    defined = [tr for tr in workflow.transitions_from(source) if tr.target == target]
    if len(defined) == 1:  # fired all the same: the service says why this caller may not
        return [(defined[0].name, defined[0].label.get(loc))]
    names = {"source": state_label(workflow, source, loc),
             "target": state_label(workflow, target, loc)}
    if defined:
        raise Forbidden(t("no_permitted_transition_to", loc, **names))
    if target == source:
        return []
    raise Conflict(t("no_transition_to", loc, **names))


def choice_of(entity: Entity, workflow: Workflow, record_id: int, target: str,
              options: list[tuple[str, str]], version) -> dict:
    """The question shown when several transitions lead to the column a card was dropped on."""
    loc = g.caller.locale
    record = site().service.get(g.caller, entity.name, record_id, with_lines=False)
    return {"prompt": t("choose_transition", loc, title=shown_title(entity, record),
                        source=state_label(workflow, record.get(workflow.field), loc),
                        target=state_label(workflow, target, loc)),
            "action": url_for("ui.board_move", entity=entity.name, record_id=record_id),
            "version": version or record["version"], "options": options}


def problem_of(entity: Entity, record_id: int, exc: RecordError) -> dict:
    """A refused move for a person: which card, why, and for invalid values its page."""
    caller, loc = g.caller, g.caller.locale
    try:
        record = site().service.get(caller, entity.name, record_id, with_lines=False)
    except RecordError:  # a record the caller cannot read is named by its id only
        title, record_url = f"#{record_id}", None
    else:
        title = shown_title(entity, record)
        record_url = url_for("ui.record_view", entity=entity.name, record_id=record_id)
    return {"headline": t("move_refused", loc, title=title),
            "details": general_errors(entity, exc, set(), loc),
            "record_url": record_url if exc.status == 422 else None}
