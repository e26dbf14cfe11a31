"""Workflows and automations: states, transitions, reachability, actions and schedules."""

from __future__ import annotations

import re
from collections import deque
from types import MappingProxyType

from engine.check.context import CheckRun, Spot
from engine.check.entities import EntityDraft, FieldDraft
from engine.check.expressions import (compile_expression, describe, fits_field, record_sample,
                                      record_scope)
from engine.config.layers import Document
from engine.errors import did_you_mean
from engine.registry.labels import Label
from engine.registry.model import (Action, Automation, CreateSpec, Entity, Role, State,
                                   Transition, Workflow)

_EVERY = re.compile(r"^every\s+(\d+)\s*(m|min|minutes?|h|hours?|d|days?)$")
_DAILY = re.compile(r"^daily at\s+([01]?\d|2[0-3]):([0-5]\d)$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


def inject_workflow_fields(run: CheckRun, workflows: dict[str, Document],
                           drafts: dict[str, EntityDraft]) -> None:
    """Give each workflow's entity its state field (an enum of the states) before compiling."""
    for name, doc in workflows.items():
        data, spot = doc.data, Spot(doc)
        entity = data["entity"]
        draft = drafts.get(entity)
        if draft is None:
            run.error(spot / "entity", "unknown-entity",
                      f"workflow '{name}': unknown entity '{entity}'{did_you_mean(entity, drafts)}")
            continue
        if draft.workflow is not None:
            run.error(spot / "entity", "duplicate-workflow",
                      f"entity '{entity}' already has workflow '{draft.workflow}'; an entity has "
                      "at most one")
            continue
        draft.workflow = name
        options = [{"value": s, "label": (spec or {}).get("label") or s}
                   for s, spec in data["states"].items()]
        field_name = data["field"]
        existing = draft.fields.get(field_name)
        if existing is None:
            draft.fields[field_name] = FieldDraft(
                field_name, {"type": "enum", "options": options,
                             "label": {"en": "Status", "zh": "状态"},
                             "default": data["initial"]},
                {"options": spot / "states", "default": spot / "initial"}, spot / "field")
        elif existing.spec.get("type") != "enum":
            run.error(spot / "field", "workflow-field",
                      f"workflow '{name}': field '{field_name}' of '{entity}' is a "
                      f"{existing.spec.get('type')} field; the state field must be an enum "
                      "(or left out: the engine adds it)")
        else:
            existing.spec["options"] = options
            existing.spec.setdefault("default", data["initial"])
            existing.spots["options"] = spot / "states"
            existing.spots.setdefault("default", spot / "initial")
            existing.removed = False


def compile_workflows(run: CheckRun, workflows: dict[str, Document], entities: dict[str, Entity],
                      roles: dict[str, Role]) -> dict[str, Workflow]:
    result = {}
    for name, doc in workflows.items():
        entity = entities.get(doc.data["entity"])
        if entity is None or entity.workflow != name:
            continue
        workflow = _compile_workflow(run, name, doc, entity, entities, roles)
        if workflow is not None:
            result[name] = workflow
    return result


def _compile_workflow(run, name, doc, entity: Entity, entities, roles) -> Workflow | None:
    data, spot = doc.data, Spot(doc)
    states = {}
    for sname, spec in data["states"].items():
        spec = spec or {}
        if "__" in sname:
            run.error(spot / "states" / sname, "bad-identifier",
                      f"state '{sname}': identifiers may not contain '__'", key=True)
        states[sname] = State(sname, Label.of(spec.get("label"), sname), bool(spec.get("final")))
    initial = data["initial"]
    if initial not in states:
        run.error(spot / "initial", "unknown-state",
                  f"initial: unknown state '{initial}'{did_you_mean(initial, states)}")
        return None
    non_final = tuple(s for s, st in states.items() if not st.final)
    scope = record_scope(entity, entities)
    transitions = {}
    for tname, spec in data["transitions"].items():
        tspot = spot / "transitions" / tname
        transition = _compile_transition(run, tname, spec, tspot, states, non_final, entity,
                                         entities, roles, scope, data["field"])
        if transition is not None:
            transitions[tname] = transition
    _check_reachable(run, spot, initial, states, _edges(data["transitions"], states, non_final))
    return Workflow(name=name, label=Label.of(data.get("label"), name), entity=entity.name,
                    field=data["field"], initial=initial, states=MappingProxyType(states),
                    transitions=MappingProxyType(transitions))


def _compile_transition(run, tname, spec, tspot: Spot, states, non_final, entity: Entity,
                        entities, roles, scope, state_field) -> Transition | None:
    good = True
    if "__" in tname:
        run.error(tspot, "bad-identifier", f"transition '{tname}': identifiers may not contain "
                  "'__'", key=True)
        good = False
    raw_from = spec["from"]
    if raw_from == "*":
        sources = non_final
    else:
        sources = (raw_from,) if isinstance(raw_from, str) else tuple(raw_from)
        for i, s in enumerate(sources):
            if s not in states:
                where = tspot / "from" / i if isinstance(raw_from, list) else tspot / "from"
                run.error(where, "unknown-state", f"transition '{tname}': unknown state '{s}'"
                          f"{did_you_mean(s, states)}")
                good = False
    target = spec["to"]
    if target not in states:
        run.error(tspot / "to", "unknown-state", f"transition '{tname}': unknown state "
                  f"'{target}'{did_you_mean(target, states)}")
        good = False
    for i, role in enumerate(spec.get("roles") or []):
        if role not in roles:
            run.error(tspot / "roles" / i, "unknown-role", f"transition '{tname}': unknown role "
                      f"'{role}'{did_you_mean(role, roles)}")
            good = False
    for i, fname in enumerate(spec.get("require") or []):
        if fname not in entity.fields:
            run.error(tspot / "require" / i, "unknown-field", f"transition '{tname}': "
                      f"'{entity.name}' has no field '{fname}'{did_you_mean(fname, entity.fields)}")
            good = False
    guard = None
    if "guard" in spec:
        guard, _ = compile_expression(run, tspot / "guard", spec["guard"], scope,
                                      what=f"transition '{tname}' guard", want_bool=True)
        good &= guard is not None
    creates = []
    local_scope = dict(scope)
    for i, item in enumerate(spec.get("create") or []):
        cspot = tspot / "create" / i
        created = entities.get(item["entity"])
        if created is None:
            run.error(cspot / "entity", "unknown-entity", f"transition '{tname}' create: unknown "
                      f"entity '{item['entity']}'{did_you_mean(item['entity'], entities)}")
            good = False
            continue
        if created.is_child:
            run.error(cspot / "entity", "child-entity", f"transition '{tname}' create: "
                      f"'{created.name}' is a child entity; create it through its parent's lines")
            good = False
            continue
        values = _assignments(run, cspot / "values", item.get("values") or {}, created,
                              local_scope, f"transition '{tname}' create {created.name}", None)
        good &= values is not None
        alias = item.get("as")
        if alias is not None:
            if alias in local_scope:
                run.error(cspot / "as", "duplicate-name", f"transition '{tname}': 'as: {alias}' "
                          "hides a name already in scope; choose another")
                good = False
            local_scope[alias] = record_sample(created, entities, 1)
        creates.append(CreateSpec(created.name, alias, MappingProxyType(values or {})))
    assignments = _assignments(run, tspot / "set", spec.get("set") or {}, entity, local_scope,
                               f"transition '{tname}' set", state_field)
    good &= assignments is not None
    if not good:
        return None
    return Transition(name=tname, label=Label.of(spec.get("label"), tname), sources=sources,
                      target=target, roles=tuple(spec.get("roles") or ()),
                      require=tuple(spec.get("require") or ()), guard=guard,
                      set=MappingProxyType(assignments), create=tuple(creates),
                      forbid_self_approval=bool(spec.get("forbid_self_approval")))


def _assignments(run, spot: Spot, values: dict, entity: Entity, scope, what: str,
                 state_field: str | None):
    """Compile field -> expression assignments onto `entity`; None if any is wrong."""
    result, good = {}, True
    for fname, source in values.items():
        fld = entity.fields.get(fname)
        if fld is None:
            run.error(spot / fname, "unknown-field", f"{what}: '{entity.name}' has no field "
                      f"'{fname}'{did_you_mean(fname, entity.fields)}", key=True)
            good = False
            continue
        if fname == state_field or not fld.kind.writable or fld.compute is not None:
            run.error(spot / fname, "not-writable", f"{what}: field '{fname}' is set by the "
                      "engine and cannot be assigned", key=True)
            good = False
            continue
        expr, sample = compile_expression(run, spot / fname, source, scope,
                                          what=f"{what} {fname}")
        if expr is None:
            good = False
            continue
        if not fits_field(fld, sample):
            run.error(spot / fname, "expr-type", f"{what} {fname}: gives {describe(sample)}, "
                      f"which cannot be stored in a {fld.type} field")
            good = False
            continue
        result[fname] = expr
    return result if good else None


def _edges(transitions: dict, states, non_final) -> list[tuple[tuple[str, ...], str]]:
    """Return (sources, target) of every transition as written, even one with other mistakes,
    so that one wrong role does not also make its target state look unreachable."""
    edges = []
    for spec in transitions.values():
        raw = spec["from"]
        sources = non_final if raw == "*" else ((raw,) if isinstance(raw, str) else tuple(raw))
        edges.append((sources, spec["to"]))
    return edges


def _check_reachable(run, spot: Spot, initial, states, edges) -> None:
    seen, queue = {initial}, deque([initial])
    while queue:
        state = queue.popleft()
        for sources, target in edges:
            if state in sources and target in states and target not in seen:
                seen.add(target)
                queue.append(target)
    for sname in states:
        if sname not in seen:
            run.error(spot / "states" / sname, "unreachable-state",
                      f"state '{sname}' cannot be reached from the initial state '{initial}'",
                      key=True)


def parse_schedule(text: str) -> tuple[int | None, str | None]:
    """Return (interval seconds, None) or (None, "HH:MM"); raise ValueError if not understood."""
    text = " ".join(text.strip().lower().split())
    match = _EVERY.match(text)
    if match:
        count = int(match.group(1))
        if count <= 0:
            raise ValueError("the interval must be positive")
        return count * _UNIT_SECONDS[match.group(2)[0]], None
    match = _DAILY.match(text)
    if match:
        return None, f"{int(match.group(1)):02d}:{match.group(2)}"
    raise ValueError("write 'every 15m', 'every 1h', 'every 1d' or 'daily at 08:30'")


def compile_automations(run: CheckRun, automations: dict[str, Document],
                        entities: dict[str, Entity], workflows: dict,
                        roles: dict[str, Role]) -> dict[str, Automation]:
    result = {}
    for name, doc in automations.items():
        automation = _compile_automation(run, name, doc, entities, workflows, roles)
        if automation is not None:
            result[name] = automation
    return result


def _compile_automation(run, name, doc, entities, workflows, roles) -> Automation | None:
    data, spot = doc.data, Spot(doc)
    entity = entities.get(data["entity"])
    if entity is None:
        run.error(spot / "entity", "unknown-entity", f"automation '{name}': unknown entity "
                  f"'{data['entity']}'{did_you_mean(data['entity'], entities)}")
        return None
    workflow = workflows.get(entity.workflow or "")
    good = True
    when, wspot = data["when"], spot / "when"
    event = transition = schedule_at = seconds = schedule = None
    if "schedule" in when:
        schedule = when["schedule"]
        try:
            seconds, schedule_at = parse_schedule(schedule)
        except ValueError as exc:
            run.error(wspot / "schedule", "bad-schedule", f"automation '{name}': schedule "
                      f"'{schedule}' is not understood: {exc}")
            good = False
    else:
        raw = when.get("event")
        if isinstance(raw, dict) or "transition" in when:
            event = "transition"
            transition = raw["transition"] if isinstance(raw, dict) else when["transition"]
            tspot = wspot / "event" / "transition" if isinstance(raw, dict) else wspot / "transition"
            if workflow is None or transition not in workflow.transitions:
                known = workflow.transitions if workflow else {}
                run.error(tspot, "unknown-transition", f"automation '{name}': '{entity.name}' has "
                          f"no transition '{transition}'{did_you_mean(transition, known)}")
                good = False
        else:
            event = raw
    scope = record_scope(entity, entities)
    condition = None
    if "condition" in data:
        condition, _ = compile_expression(run, spot / "condition", data["condition"], scope,
                                          what=f"automation '{name}' condition", want_bool=True)
        good &= condition is not None
    actions = []
    for i, item in enumerate(data["do"]):
        action = _compile_action(run, name, item, spot / "do" / i, entity, entities, workflow,
                                 roles, scope)
        if action is None:
            good = False
        else:
            actions.append(action)
    if not good:
        return None
    return Automation(name=name, label=Label.of(data.get("label"), name), entity=entity.name,
                      event=event, transition=transition, schedule=schedule,
                      schedule_seconds=seconds, schedule_at=schedule_at, condition=condition,
                      actions=tuple(actions))


def _compile_action(run, name, item, spot: Spot, entity: Entity, entities, workflow, roles,
                    scope) -> Action | None:
    what = f"automation '{name}'"
    if "transition" in item:
        tname = item["transition"]
        if workflow is None or tname not in workflow.transitions:
            known = workflow.transitions if workflow else {}
            run.error(spot / "transition", "unknown-transition", f"{what}: '{entity.name}' has "
                      f"no transition '{tname}'{did_you_mean(tname, known)}")
            return None
        return Action("transition", transition=tname)
    if "set" in item:
        values = _assignments(run, spot / "set", item["set"], entity, scope, f"{what} set",
                              workflow.field if workflow else None)
        return None if values is None else Action("set", values=MappingProxyType(values))
    if "webhook" in item:
        spec = item["webhook"]
        return Action("webhook", url=spec["url"], secret_env=spec["secret_env"])
    if "notify" in item:
        spec, nspot = item["notify"], spot / "notify"
        role, to = spec.get("role"), spec.get("to")
        if (role is None) == (to is None):
            run.error(nspot, "notify-target", f"{what}: notify needs exactly one of 'role' or "
                      "'to' (owner, or a field holding a user)", key=True)
            return None
        if role is not None and role not in roles:
            run.error(nspot / "role", "unknown-role", f"{what}: unknown role '{role}'"
                      f"{did_you_mean(role, roles)}")
            return None
        if to is not None and to != "owner":
            fld = entity.fields.get(to)
            if fld is None or fld.to != "user":
                users = ["owner"] + [n for n, f in entity.fields.items() if f.to == "user"]
                run.error(nspot / "to", "notify-target", f"{what}: notify to: '{to}' is neither "
                          f"'owner' nor a user field of '{entity.name}'{did_you_mean(to, users)}")
                return None
        return Action("notify", notify_role=role, notify_to=to,
                      message=Label.of(spec["message"]),
                      title=Label.of(spec["title"]) if spec.get("title") else None)
    spec, cspot = item["create"], spot / "create"
    created = entities.get(spec["entity"])
    if created is None:
        run.error(cspot / "entity", "unknown-entity", f"{what} create: unknown entity "
                  f"'{spec['entity']}'{did_you_mean(spec['entity'], entities)}")
        return None
    if created.is_child:
        run.error(cspot / "entity", "child-entity", f"{what} create: '{created.name}' is a "
                  "child entity; create it through its parent's lines")
        return None
    values = _assignments(run, cspot / "values", spec.get("values") or {}, created, scope,
                          f"{what} create {created.name}", None)
    if values is None:
        return None
    return Action("create", entity=created.name, values=MappingProxyType(values))
