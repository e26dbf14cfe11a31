"""Inbound webhooks (`inbound/*.yaml`): the entity, fields and transition a sender may change."""

from __future__ import annotations

from types import MappingProxyType

from engine.check.context import CheckRun, Spot
from engine.config.layers import Document
from engine.errors import did_you_mean
from engine.registry.labels import Label
from engine.registry.model import Entity, InboundSource

DEFAULT_SIGNATURE_HEADER = "X-Signature"
DEFAULT_TOLERANCE = 300
# kinds a record can be found by: one stored, comparable value
_UNMATCHABLE = frozenset({"lines", "json", "multi_enum"})


def parse_path(text: str) -> tuple[str, ...]:
    """Return the keys of a body path: `$.data.order_no` and `data.order_no` give
    ("data", "order_no"). The schema has checked its form already."""
    return tuple(text.removeprefix("$.").split("."))


def compile_inbound(run: CheckRun, documents: dict[str, Document], entities: dict[str, Entity],
                    workflows: dict) -> dict[str, InboundSource]:
    result = {}
    for name, doc in documents.items():
        source = _compile_source(run, name, doc, entities, workflows)
        if source is not None:
            result[name] = source
    return result


def _compile_source(run: CheckRun, name: str, doc: Document, entities, workflows):
    data, spot = doc.data, Spot(doc)
    what = f"inbound '{name}'"
    entity = entities.get(data["entity"])
    if entity is None:
        run.error(spot / "entity", "unknown-entity", f"{what}: unknown entity "
                  f"'{data['entity']}'{did_you_mean(data['entity'], entities)}")
        return None
    if entity.is_child:
        run.error(spot / "entity", "child-entity", f"{what}: '{entity.name}' is a child entity; "
                  "change it through its parent's lines")
        return None
    workflow = workflows.get(entity.workflow or "")
    state_field = workflow.field if workflow else None
    good = True
    for fname in data["match"]:
        fld = entity.fields.get(fname)
        if fld is None:
            run.error(spot / "match" / fname, "unknown-field", f"{what} match: '{entity.name}' "
                      f"has no field '{fname}'{did_you_mean(fname, entity.fields)}", key=True)
            good = False
        elif fld.type in _UNMATCHABLE or not fld.kind.stored:
            run.error(spot / "match" / fname, "bad-match", f"{what} match: a record cannot be "
                      f"found by its {fld.type} field '{fname}'; match a field such as a number "
                      "or code", key=True)
            good = False
    for fname in data.get("set") or {}:
        fld = entity.fields.get(fname)
        if fld is None:
            run.error(spot / "set" / fname, "unknown-field", f"{what} set: '{entity.name}' has "
                      f"no field '{fname}'{did_you_mean(fname, entity.fields)}", key=True)
            good = False
        elif fname == state_field or not fld.kind.writable or fld.compute is not None \
                or fld.type == "lines":
            hint = " (fire a transition to change the state)" if fname == state_field else ""
            run.error(spot / "set" / fname, "not-writable", f"{what} set: field '{fname}' is "
                      f"set by the engine and cannot be assigned{hint}", key=True)
            good = False
    transition, when = _transition(data.get("transition"))
    if transition is not None and (workflow is None or transition not in workflow.transitions):
        tspot = spot / "transition" / "name" if isinstance(data["transition"], dict) \
            else spot / "transition"
        known = workflow.transitions if workflow else {}
        run.error(tspot, "unknown-transition", f"{what}: '{entity.name}' has no transition "
                  f"'{transition}'{did_you_mean(transition, known)}")
        good = False
    if data.get("create_if_missing") and good:
        given = set(data["match"]) | set(data.get("set") or {})
        for fname, fld in entity.fields.items():
            if fld.required and fname not in given and fname != state_field \
                    and fld.default is None and fld.default_expr is None \
                    and fld.compute is None and fld.kind.writable:
                run.error(spot / "create_if_missing", "missing-required", f"{what}: a record "
                          f"created when none matches needs the required field '{fname}'; "
                          "add it to 'set' or give it a default")
                good = False
    if not good:
        return None
    signature = data.get("signature") or {}
    raw_id = data["event_id"]
    id_path = raw_id if isinstance(raw_id, str) else raw_id.get("path")
    return InboundSource(
        name=name, label=Label.of(data.get("label"), name), secret_env=data["secret_env"],
        signature_header=signature.get("header", DEFAULT_SIGNATURE_HEADER), entity=entity.name,
        match=MappingProxyType({f: parse_path(p) for f, p in data["match"].items()}),
        set=MappingProxyType({f: parse_path(p) for f, p in (data.get("set") or {}).items()}),
        event_id_path=parse_path(id_path) if id_path else None,
        event_id_header=None if id_path else raw_id["header"],
        timestamp_header=signature.get("timestamp_header"),
        tolerance=signature.get("tolerance", DEFAULT_TOLERANCE), transition=transition,
        transition_when=MappingProxyType({parse_path(p): v for p, v in when.items()}),
        create_if_missing=bool(data.get("create_if_missing")), source=spot.where)


def _transition(raw) -> tuple[str | None, dict]:
    if raw is None:
        return None, {}
    if isinstance(raw, str):
        return raw, {}
    return raw["name"], dict(raw.get("when") or {})
