"""Roles: merge roles.yaml across layers, resolve `inherits`, check every name."""

from __future__ import annotations

from types import MappingProxyType

from engine.check.context import CheckRun, Spot
from engine.config.layers import Layer
from engine.errors import did_you_mean
from engine.registry.labels import Label
from engine.registry.model import ACTIONS, Entity, EntityAccess, Role, SharingRule

ADMIN = "admin"


RULE_ACTIONS = ("read", "update", "delete")


def _access_value(value):
    if isinstance(value, SharingRule):
        return value
    if value is True or value == "all":
        return "all"
    if value == "own":
        return "own"
    return None


def compile_sharing_rule(run: CheckRun, spot: Spot, role: str, action: str, spec: dict,
                         entity: Entity, entities: dict[str, Entity]) -> SharingRule | None:
    """Check a sharing rule (`read: {through: coverage, user: rep, match: {...}}`)."""
    what = f"role '{role}': {entity.name}.{action}"
    if action not in RULE_ACTIONS:
        run.error(spot, "rule-not-allowed", f"{what}: a sharing rule applies to read, update "
                  "and delete; use all, own or false", key=True)
        return None
    if "where" not in spec and "through" not in spec:
        run.error(spot, "empty-rule", f"{what}: a sharing rule needs 'where' or 'through'",
                  key=True)
        return None
    good = True
    where = None
    if "where" in spec:
        from engine.check.analytics import selection  # a rule selects rows like a report
        where = selection(run, spot / "where", spec["where"], entity, entities,
                          f"{what} where")
        good = where is not None
    through, user, match = spec.get("through"), spec.get("user"), dict(spec.get("match") or {})
    if through is not None or user is not None or match:
        for key in ("through", "user", "match"):
            if key not in spec:
                run.error(spot, "incomplete-rule", f"{what}: 'through', 'user' and 'match' go "
                          f"together; '{key}' is missing", key=True)
                return None
        link = entities.get(through)
        if link is None or link.is_child:
            run.error(spot / "through", "unknown-entity", f"{what}: through unknown entity "
                      f"'{through}'{did_you_mean(through, entities)}")
            return None
        user_field = link.fields.get(user)
        if user_field is None or user_field.type != "reference" or user_field.to != "user":
            run.error(spot / "user", "not-a-user-reference", f"{what}: '{through}.{user}' must "
                      f"be a reference to user{did_you_mean(user, link.fields)}")
            good = False
        for link_name, record_name in match.items():
            mspot = spot / "match" / link_name
            link_field = link.fields.get(link_name)
            if link_field is None or not link_field.kind.stored:
                run.error(mspot, "unknown-field", f"{what}: '{through}' has no field "
                          f"'{link_name}'{did_you_mean(link_name, link.fields)}", key=True)
                good = False
                continue
            if record_name == "id":
                fits = link_field.type == "reference" and link_field.to == entity.name
                wanted = f"a reference to {entity.name}"
            else:
                record_field = entity.fields.get(record_name)
                if record_field is None or not record_field.kind.stored:
                    run.error(mspot, "unknown-field", f"{what}: '{entity.name}' has no field "
                              f"'{record_name}'{did_you_mean(record_name, entity.fields)}")
                    good = False
                    continue
                fits = _comparable(link_field, record_field)
                wanted = f"of the same kind as {entity.name}.{record_name}"
            if not fits:
                run.error(mspot, "type-mismatch", f"{what}: '{through}.{link_name}' must be "
                          f"{wanted}")
                good = False
    if not good:
        return None
    return SharingRule(where=where, through=through, user=user,
                       match=MappingProxyType(match), own=bool(spec.get("own", False)))


def _comparable(left, right) -> bool:
    if left.type == "reference" or right.type == "reference":
        return left.type == right.type == "reference" and left.to == right.to
    text = {"string", "email", "phone", "url", "enum", "autonumber", "text"}
    number = {"integer", "decimal", "money", "percent"}
    return left.type == right.type or (left.type in text and right.type in text) or \
        (left.type in number and right.type in number)


def compile_roles(run: CheckRun, layers: list[Layer],
                  entities: dict[str, Entity]) -> dict[str, Role]:
    """Return every role, `admin` included, with inheritance resolved."""
    merged: dict[str, dict] = {}
    for layer in layers:
        for doc in (d for d in layer.documents if d.kind == "roles"):
            for name, spec in doc.data["roles"].items():
                spot = Spot(doc, ("roles", name))
                if name == ADMIN:
                    run.error(spot, "reserved-name", "role 'admin' is built in (it may do "
                              "everything) and cannot be redefined", key=True)
                    continue
                if "__" in name:
                    run.error(spot, "bad-identifier", f"role '{name}': identifiers may not "
                              "contain '__'", key=True)
                    continue
                role = merged.setdefault(name, {"label": None, "inherits": [], "entities": {},
                                                "fields": {}, "spot": spot})
                if spec.get("label"):
                    role["label"] = spec["label"]
                if "inherits" in spec:
                    role["inherits"] = [(p, spot / "inherits" / i)
                                        for i, p in enumerate(spec["inherits"])]
                for ename, actions in (spec.get("entities") or {}).items():
                    espot = spot / "entities" / ename
                    entity = entities.get(ename)
                    if entity is None:
                        run.error(espot, "unknown-entity", f"role '{name}': unknown entity "
                                  f"'{ename}'{did_you_mean(ename, entities)}", key=True)
                        continue
                    if entity.is_child:
                        run.error(espot, "child-entity", f"role '{name}': '{ename}' is a child "
                                  f"entity and takes the permissions of '{entity.parent}'",
                                  key=True)
                        continue
                    compiled = {}
                    for action, value in actions.items():
                        if isinstance(value, dict):
                            value = compile_sharing_rule(run, espot / action, name, action,
                                                         value, entity, entities)
                        compiled[action] = value
                    role["entities"].setdefault(ename, {}).update(compiled)
                for key, access in (spec.get("fields") or {}).items():
                    fspot = spot / "fields" / key
                    if _check_field_key(run, fspot, name, key, entities):
                        role["fields"][key] = access

    resolved: dict[str, Role] = {}
    for name in merged:
        _resolve(run, name, merged, resolved, [])
    all_access = EntityAccess(*(["all"] * len(ACTIONS)))
    resolved[ADMIN] = Role(ADMIN, Label.of({"en": "Administrator", "zh": "管理员"}),
                           MappingProxyType({e: all_access for e in entities}),
                           MappingProxyType({}))
    return resolved


def _check_field_key(run, spot: Spot, role: str, key: str, entities) -> bool:
    ename, _, fname = key.partition(".")
    entity = entities.get(ename)
    if not fname or entity is None:
        run.error(spot, "unknown-field", f"role '{role}': fields keys are 'entity.field'; "
                  f"'{key}' names no entity{did_you_mean(ename, entities)}", key=True)
        return False
    if fname not in entity.fields:
        run.error(spot, "unknown-field", f"role '{role}': '{ename}' has no field '{fname}'"
                  f"{did_you_mean(fname, entity.fields)}", key=True)
        return False
    return True


def _resolve(run, name, merged, resolved, chain) -> Role | None:
    if name in resolved:
        return resolved[name]
    spec = merged[name]
    if name in chain:
        cycle = " -> ".join(chain[chain.index(name):] + [name])
        run.error(spec["spot"], "role-cycle", f"circular 'inherits': {cycle}", key=True)
        return None
    entities: dict[str, dict] = {}
    fields: dict[str, str] = {}
    parents = []
    for parent, pspot in spec["inherits"]:
        if parent not in merged:
            hint = " ('admin' cannot be inherited)" if parent == ADMIN else did_you_mean(parent,
                                                                                      merged)
            run.error(pspot, "unknown-role", f"role '{name}': inherits unknown role "
                      f"'{parent}'{hint}")
            continue
        base = _resolve(run, parent, merged, resolved, chain + [name])
        if base is None:
            continue
        parents.append(parent)
        for ename, access in base.entities.items():
            entities.setdefault(ename, {}).update(
                {a: getattr(access, a) for a in ACTIONS if getattr(access, a) is not None})
        fields.update(base.fields)
    for ename, actions in spec["entities"].items():
        entities.setdefault(ename, {}).update(
            {a: _access_value(v) for a, v in actions.items()})
    fields.update(spec["fields"])
    role = Role(
        name=name, label=Label.of(spec["label"], name),
        entities=MappingProxyType({e: EntityAccess(**{a: v.get(a) for a in ACTIONS})
                                   for e, v in entities.items()}),
        fields=MappingProxyType(fields), inherits=tuple(parents))
    resolved[name] = role
    return role
