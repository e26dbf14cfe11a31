"""Lookups: a field filled, when left empty, from the best matching record of another entity.

This is the third pass over entities: it needs every entity compiled (the candidate entity's
fields) and every field's compute (a lookup may read a computed field, and the two must not
feed each other in a circle). What is checked, each reported at its key:

- `from` names an entity, `take`/`match`/`valid`/`order` name its fields;
- `take` fits the field (same family: numbers, texts, the same reference target...);
- each match expression gives a value comparable with its candidate field;
- `valid` names two date or datetime fields, `on` gives a date, `where` is a condition on the
  candidate that SQL can say (candidates are read in the database);
- a lookup is not combined with `compute`, and no lookup reads itself through other lookups or
  computed fields.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from engine.check.context import CheckRun, Spot
from engine.check.entities import EntityDraft
from engine.check.expressions import compile_expression, describe, record_sample, record_scope
from engine.check.sqlsubset import check_sql_subset
from engine.errors import did_you_mean
from engine.registry.derivation import field_reads
from engine.expr.tree import Member, Name, TreeSyntaxError, parse_tree
from engine.registry.model import Entity, Field, FieldLookup

PARENT = "parent"  # in a line's lookup: the record the line belongs to
NUMBERS = frozenset({"integer", "decimal", "money", "percent", "rollup"})
TEXTS = frozenset({"string", "text", "email", "phone", "url", "enum", "autonumber"})
NOT_FILLABLE = frozenset({"lines", "rollup", "autonumber"})  # the engine fills these itself
NOT_COMPARABLE = frozenset({"lines", "json", "multi_enum", "text"})
_EXCLUDED_NAMES = frozenset({PARENT, "user"})


def compile_lookups(run: CheckRun, drafts: dict[str, EntityDraft],
                    entities: dict[str, Entity]) -> dict[str, Entity]:
    """Compile every field's `lookup` and check that none reads itself."""
    result = {}
    for name, entity in entities.items():
        draft = drafts[name]
        changed = {}
        for fname, fld in entity.fields.items():
            spec = draft.fields[fname].spec.get("lookup")
            if spec is None:
                continue
            spot = draft.fields[fname].spots["lookup"]
            lookup = _compile(run, spot, spec, fld, entity, entities)
            if lookup is not None:
                changed[fname] = dataclasses.replace(fld, lookup=lookup)
        if changed:
            fields = {n: changed.get(n, f) for n, f in entity.fields.items()}
            entity = dataclasses.replace(entity, fields=MappingProxyType(fields))
            _check_cycles(run, draft, entity)
        result[name] = entity
    return result


def _compile(run: CheckRun, spot: Spot, spec: dict, fld: Field, entity: Entity,
             entities) -> FieldLookup | None:
    what = f"field '{fld.name}' lookup"
    good = True
    if fld.type in NOT_FILLABLE:
        run.error(spot, "key-not-for-type", f"field '{fld.name}': a {fld.type} field is "
                  "filled by the engine and cannot take a lookup", key=True)
        good = False
    if fld.compute is not None:
        run.error(spot, "lookup-compute", f"field '{fld.name}': a field is either computed or "
                  "looked up, not both (a computed value would replace the one looked up)",
                  key=True)
        good = False
    source = entities.get(spec["from"])
    if source is None:
        run.error(spot / "from", "unknown-entity", f"{what}: from: unknown entity "
                  f"'{spec['from']}'{did_you_mean(spec['from'], entities)}")
        return None
    candidates = source.fields

    def candidate(key_spot: Spot, name: str, role: str) -> Field | None:
        found = candidates.get(name)
        if found is None:
            run.error(key_spot, "unknown-field", f"{what}: {role}: '{source.name}' has no "
                      f"field '{name}'{did_you_mean(name, candidates)}")
        elif not found.kind.stored:
            run.error(key_spot, "lookup-type", f"{what}: {role}: '{source.name}.{name}' is a "
                      f"{found.type} field, which has no value to read")
            return None
        return found

    taken = candidate(spot / "take", spec["take"], "take")
    if taken is None:
        good = False
    elif not assignable(taken, fld):
        run.error(spot / "take", "lookup-type", f"{what}: take: '{source.name}.{taken.name}' "
                  f"is a {_kind_text(taken)} field, which cannot fill this "
                  f"{_kind_text(fld)} field")
        good = False

    scope = record_scope(entity, entities)
    parent = entities.get(entity.parent) if entity.parent else None
    if parent is not None and PARENT not in entity.fields:
        scope[PARENT] = record_sample(parent, entities, 1)
    match, inputs, parent_inputs, deep = {}, set(), set(), set()
    for cname, source_text in spec["match"].items():
        mspot = spot / "match" / cname
        target = candidates.get(cname)
        if target is None:
            run.error(mspot, "unknown-field", f"{what}: match: '{source.name}' has no "
                      f"field '{cname}'{did_you_mean(cname, candidates)}", key=True)
            good = False
            continue
        if target.type in NOT_COMPARABLE or not target.kind.stored:
            run.error(mspot, "lookup-type", f"{what}: match: '{source.name}.{cname}' is a "
                      f"{target.type} field, which cannot be matched by equality", key=True)
            good = False
            continue
        expr, sample = compile_expression(run, mspot, source_text, scope,
                                          what=f"{what} match '{cname}'")
        if expr is None:
            good = False
            continue
        named = _named_field(expr.source, entity, parent, entities)
        if not comparable(target, sample, named):
            run.error(mspot, "lookup-type", f"{what}: match '{cname}': gives "
                      f"{_value_text(sample, named)}, which cannot equal "
                      f"'{source.name}.{cname}' ({_kind_text(target)})")
            good = False
            continue
        match[cname] = expr
        _collect(expr.source, entity, parent, inputs, parent_inputs, deep)

    valid = None
    if "valid" in spec:
        bounds = []
        for i, bname in enumerate(spec["valid"]):
            bound = candidate(spot / "valid" / i, bname, "valid")
            if bound is None:
                good = False
            elif bound.type not in ("date", "datetime"):
                run.error(spot / "valid" / i, "lookup-type", f"{what}: valid: "
                          f"'{source.name}.{bname}' is a {bound.type} field; the bounds of a "
                          "validity period are date or datetime fields")
                good = False
            bounds.append(bname)
        valid = tuple(bounds)

    on = None
    if "on" in spec:
        if "valid" not in spec:
            run.error(spot / "on", "missing-key", f"{what}: on: a date to test needs 'valid' "
                      "(the candidate's validity period)", key=True)
            good = False
        on, sample = compile_expression(run, spot / "on", spec["on"], scope, what=f"{what} on")
        if on is None:
            good = False
        elif sample is not None and not hasattr(sample, "year"):
            run.error(spot / "on", "lookup-type", f"{what}: on: gives {describe(sample)}; it "
                      "must give a date (a date field, today()...)")
            good = False
        else:
            _collect(on.source, entity, parent, inputs, parent_inputs, deep)

    order = []
    for i, item in enumerate(spec.get("order") or ()):
        descending = item.startswith("-")
        oname = item.lstrip("+-")
        if oname == "id":  # the last tie-break already is the highest id; "id" reverses it
            order.append((oname, descending))
            continue
        ofield = candidate(spot / "order" / i, oname, "order")
        if ofield is None:
            good = False
        elif not ofield.kind.orderable:
            run.error(spot / "order" / i, "not-sortable", f"{what}: order: "
                      f"'{source.name}.{oname}' cannot be sorted")
            good = False
        else:
            order.append((oname, descending))

    where = None
    if "where" in spec:
        candidate_scope = record_sample(source, entities)  # no `user`: read as the system
        where, _ = compile_expression(run, spot / "where", spec["where"], candidate_scope,
                                      what=f"{what} where", want_bool=True)
        if where is None or not check_sql_subset(run, spot / "where", spec["where"],
                                                 f"{what} where"):
            good = False
    if not good:
        return None
    return FieldLookup(source=source.name, take=taken.name, match=MappingProxyType(match),
                       valid=valid, on=on, order=tuple(order), where=where,
                       inputs=frozenset(inputs), parent_inputs=frozenset(parent_inputs),
                       deep_references=frozenset(deep))


def assignable(source: Field, target: Field) -> bool:
    """Whether values of `source` may be stored in `target` without changing their meaning."""
    s, t = source.type, target.type
    if t == "integer":
        return s == "integer"
    if t in ("decimal", "money", "percent"):
        return s in NUMBERS
    if t in ("string", "text"):
        return s in TEXTS
    if t in ("enum", "multi_enum"):
        return s == t and set(source.option_values) <= set(target.option_values)
    if t == "reference":
        return s == "reference" and source.to == target.to
    if t == "datetime":
        return s in ("date", "datetime")
    return s == t


def comparable(candidate: Field, sample, named: Field | None) -> bool:
    """Whether an expression giving `sample` (a field `named` when it is one) can equal values
    of `candidate`."""
    if sample is None:
        return True
    if candidate.type == "reference":
        if named is not None:
            return named.type == "reference" and named.to == candidate.to
        return isinstance(sample, dict) or (isinstance(sample, int) and
                                            not isinstance(sample, bool))
    if named is not None and named.type == "reference":
        return False
    cel_type = candidate.kind.cel_type
    if cel_type in ("int", "double"):
        return isinstance(sample, (int, float)) and not isinstance(sample, bool)
    if cel_type == "string":
        return isinstance(sample, str)
    if cel_type == "bool":
        return isinstance(sample, bool)
    if cel_type == "timestamp":
        return hasattr(sample, "year")
    return False


def _named_field(source: str, entity: Entity, parent: Entity | None,
                 entities) -> Field | None:
    """The field an expression that is just a name (`product`, `parent.channel`,
    `customer.tier`) stands for, else None."""
    try:
        node = parse_tree(source)
    except TreeSyntaxError:
        return None
    path = []
    while isinstance(node, Member):
        path.append(node.name)
        node = node.target
    if not isinstance(node, Name):
        return None
    path.append(node.name)
    path.reverse()
    current = entity
    if path[0] == PARENT and PARENT not in entity.fields and parent is not None:
        current, path = parent, path[1:]
    found = None
    for i, name in enumerate(path):
        if current is None:
            return None
        found = current.fields.get(name)
        if found is None:
            return None
        if i < len(path) - 1:
            current = entities.get(found.to or "") if found.type == "reference" else None
    return found


def _collect(source: str, entity: Entity, parent: Entity | None, inputs: set,
             parent_inputs: set, deep: set) -> None:
    """Add the fields an expression reads: of the record, of its parent (`parent.x`), and the
    reference fields it reads through (`customer.tier`: more than the id)."""
    try:
        tree = parse_tree(source)
    except TreeSyntaxError:
        return
    has_parent = parent is not None and PARENT not in entity.fields

    def walk(node, member_of=None) -> None:
        if isinstance(node, Member):
            walk(node.target, node.name)
            return
        if isinstance(node, Name):
            if node.name == PARENT and has_parent:
                if member_of is not None:
                    parent_inputs.add(member_of)
            elif node.name in entity.fields and node.name not in _EXCLUDED_NAMES:
                inputs.add(node.name)
                if member_of not in (None, "id") and entity.fields[node.name].type == "reference":
                    deep.add(node.name)
            return
        for child in vars(node).values():
            for item in (child if isinstance(child, tuple) else (child,)):
                for sub in (item if isinstance(item, tuple) else (item,)):
                    if hasattr(sub, "offset"):
                        walk(sub)
    walk(tree)


def _check_cycles(run: CheckRun, draft: EntityDraft, entity: Entity) -> None:
    """Report each lookup that reads its own field through lookups and computed fields."""
    derived = {n: field_reads(f) for n, f in entity.fields.items()
               if f.compute is not None or f.lookup is not None}
    for name, fld in entity.fields.items():
        if fld.lookup is None:
            continue
        path = _path_back(name, derived)
        if path is not None:
            run.error(draft.fields[name].spots["lookup"], "lookup-cycle",
                      f"field '{name}': its lookup reads itself ({' -> '.join(path)}); a "
                      "lookup cannot depend on its own result", key=True)


def _path_back(start: str, derived: dict[str, set[str]]) -> list[str] | None:
    """The shortest chain of reads from `start` back to itself, or None."""
    frontier = [[start]]
    seen = set()
    while frontier:
        path = frontier.pop(0)
        for name in sorted(derived.get(path[-1], ())):
            if name == start:
                return path + [name]
            if name not in seen:
                seen.add(name)
                frontier.append(path + [name])
    return None


def _kind_text(fld: Field) -> str:
    return f"reference to {fld.to}" if fld.type == "reference" else fld.type


def _value_text(sample, named: Field | None) -> str:
    if named is not None:
        return f"a {_kind_text(named)}"
    return "a reference" if isinstance(sample, dict) else describe(sample)
