"""Entities: merge definitions and extensions across layers, then compile them.

Compiling happens in two passes. The first builds every `Entity` with its fields, options,
references and layout; the second compiles the expressions, which need every entity's fields
(a reference's fields are reachable with a dot).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from types import MappingProxyType

from engine.check.context import CheckRun, Spot
from engine.check.expressions import compile_expression, describe, fits_field, record_scope
from engine.check.sqlsubset import check_sql_subset
from engine.config.layers import Layer
from engine.errors import did_you_mean
from engine.registry.fieldtypes import FIELD_KINDS
from engine.registry.contenttypes import KNOWN_TYPES, known_accept
from engine.registry.labels import Label
from engine.registry.model import (RESERVED_ENTITY_NAMES, SYSTEM_FIELDS, AssignmentRule,
                                   Entity, Field, FormSection, Option, Validation)

TEXT_KINDS = frozenset({"string", "text", "email", "phone", "url", "enum", "autonumber"})
SEARCHABLE = frozenset({"string", "text", "email", "phone", "url", "autonumber", "enum"})
# type changes an extension may make without losing data (DSL §7)
WIDENINGS = frozenset({("integer", "decimal"), ("integer", "money"), ("integer", "percent"),
                       ("decimal", "money"), ("money", "decimal"), ("string", "text"),
                       ("email", "string"), ("phone", "string"), ("url", "string"),
                       ("enum", "string")})
SYSTEM_COLUMNS = frozenset(SYSTEM_FIELDS) - {"deleted_at"}
_NUMBER_TOKEN = re.compile(r"\{([A-Za-z]+)(?::(\d+))?\}")
_NUMBER_TOKENS = frozenset({"YYYY", "YY", "MM", "DD", "seq"})


@dataclass
class FieldDraft:
    name: str
    spec: dict
    spots: dict  # key -> Spot of its value
    spot: Spot  # the field's own key
    removed: bool = False


@dataclass
class EntityDraft:
    name: str
    spot: Spot
    layer: int
    top: dict = field(default_factory=dict)
    top_spots: dict = field(default_factory=dict)
    fields: dict = field(default_factory=dict)
    appended: dict = field(default_factory=lambda: {"indexes": [], "unique": [],
                                                    "validations": []})
    workflow: str | None = None


_REPLACED_KEYS = ("label", "plural", "description", "module", "title", "list", "form", "search",
                  "assignment")
_APPENDED_KEYS = ("indexes", "unique", "validations")


def merge_entities(run: CheckRun, layers: list[Layer]) -> dict[str, EntityDraft]:
    """Apply every layer's entity definitions, then its extensions, lowest layer first."""
    drafts: dict[str, EntityDraft] = {}
    for index, layer in enumerate(layers):
        for doc in (d for d in layer.documents if d.kind == "entity"):
            spot = Spot(doc)
            name = doc.data["entity"]
            if name in drafts:
                other = drafts[name]
                hint = (f"; to change it from this layer write 'extend: {name}'"
                        if other.layer < index else "")
                run.error(spot / "entity", "duplicate-entity",
                          f"entity '{name}' is already defined at {other.spot.where}{hint}")
                continue
            draft = EntityDraft(name, spot / "entity", index)
            draft.top["parent"] = doc.data.get("parent")
            draft.top_spots["parent"] = spot / "parent"
            _apply(run, draft, doc.data, spot, extension=False)
            drafts[name] = draft
        for doc in (d for d in layer.documents if d.kind == "extension"):
            spot = Spot(doc)
            name = doc.data["extend"]
            draft = drafts.get(name)
            if draft is None or draft.layer >= index:
                where = ("is defined in the same layer; change it there" if draft else
                         f"is not defined in a lower layer{did_you_mean(name, drafts)}")
                run.error(spot / "extend", "extend-unknown", f"cannot extend '{name}': it {where}")
                continue
            if "parent" in doc.data:
                run.error(spot / "parent", "extend-parent",
                          "an extension cannot change an entity's parent", key=True)
            _apply(run, draft, doc.data, spot, extension=True)
    return drafts


def _apply(run: CheckRun, draft: EntityDraft, data: dict, spot: Spot, extension: bool) -> None:
    for key in _REPLACED_KEYS:
        if key in data:
            draft.top[key] = data[key]
            draft.top_spots[key] = spot / key
    for key in _APPENDED_KEYS:
        if key in data:
            items = [(item, spot / key / i) for i, item in enumerate(data[key])]
            if data.get("replace"):
                draft.appended[key] = items
            else:
                draft.appended[key].extend(items)
    for name, spec in (data.get("fields") or {}).items():
        fspot = spot / "fields" / name
        spots = {k: fspot / k for k in spec}
        existing = draft.fields.get(name)
        if spec.get("remove"):
            if existing is None:
                run.error(fspot, "remove-unknown",
                          f"cannot remove field '{name}': no lower layer defines it"
                          f"{did_you_mean(name, draft.fields)}", key=True)
            else:
                existing.removed = True
            continue
        if existing is None:
            draft.fields[name] = FieldDraft(name, dict(spec), spots, fspot)
            continue
        if not extension:  # pragma: no cover - YAML duplicate keys are caught earlier
            continue
        old_type, new_type = existing.spec.get("type"), spec.get("type")
        if new_type and old_type and new_type != old_type and (old_type, new_type) not in WIDENINGS:
            run.error(spots["type"], "type-change",
                      f"field '{name}': changing type from {old_type} to {new_type} could lose "
                      "data; add a new field instead")
            continue
        if new_type and new_type != old_type:
            allowed = FIELD_KINDS[new_type].keys
            for key in [k for k in existing.spec if k not in allowed]:
                del existing.spec[key]  # e.g. an enum's options once it becomes a string
                existing.spots.pop(key, None)
        existing.spec.update(spec)
        existing.spots.update(spots)
        existing.removed = False


def compile_entities(run: CheckRun, drafts: dict[str, EntityDraft]) -> dict[str, Entity]:
    """First pass: every entity with its fields and layout, expressions not yet compiled."""
    entities: dict[str, Entity] = {}
    for draft in drafts.values():
        entity = _compile_entity(run, draft, drafts)
        if entity is not None:
            entities[draft.name] = entity
    return entities


def _identifier_ok(run: CheckRun, spot: Spot, name: str, what: str) -> bool:
    if "__" in name:
        run.error(spot, "bad-identifier", f"{what} '{name}': identifiers may not contain '__'",
                  key=True)
        return False
    return True


def _compile_entity(run: CheckRun, draft: EntityDraft, drafts) -> Entity | None:
    name = draft.name
    ok = _identifier_ok(run, draft.spot, name, "entity")
    if name in RESERVED_ENTITY_NAMES:
        run.error(draft.spot, "reserved-name",
                  f"entity '{name}': the name is reserved by the API; choose another")
        ok = False
    parent = draft.top.get("parent")
    if parent is not None and (parent not in drafts or parent == name):
        run.error(draft.top_spots["parent"], "unknown-entity",
                  f"parent: unknown entity '{parent}'{did_you_mean(parent, drafts)}")
        parent = None

    fields: dict[str, Field] = {}
    removed: dict[str, Field] = {}
    for fd in draft.fields.values():
        if fd.name in SYSTEM_FIELDS:
            run.error(fd.spot, "system-field",
                      f"field '{fd.name}' is a system field every record has; choose another "
                      "name", key=True)
            continue
        if not _identifier_ok(run, fd.spot, fd.name, "field"):
            continue
        compiled = _compile_field(run, name, fd, drafts)
        if compiled is None:
            continue
        (removed if fd.removed else fields)[fd.name] = compiled
    if not ok:
        return None

    top, spots = draft.top, draft.top_spots
    title = top.get("title") or _default_title(fields)
    if title not in fields and title != "id":
        run.error(spots.get("title", draft.spot), "unknown-field",
                  f"title: unknown field '{title}'{did_you_mean(title, fields)}")
        title = "id"
    listed = dict(top.get("list") or {})
    columns = _field_list(run, spots.get("list"), "columns", listed.get("columns"), fields,
                          system=True) or _default_columns(title, fields)
    filters = _field_list(run, spots.get("list"), "filters", listed.get("filters"), fields,
                          system=True) or ()
    sort = _parse_sort(run, (spots["list"] / "sort") if "sort" in listed else None,
                       listed.get("sort"), fields)
    search = _field_list(run, spots.get("search"), None, top.get("search"), fields)
    for i, fname in enumerate(search):
        if fname in fields and fields[fname].type not in SEARCHABLE:
            run.error(spots["search"] / i, "not-searchable",
                      f"search: field '{fname}' of type {fields[fname].type} cannot be searched "
                      "as text")
    if not search and title in fields and fields[title].type in SEARCHABLE:
        search = (title,)

    indexes = tuple(_field_groups(run, draft.appended["indexes"], fields, "indexes"))
    unique = tuple(_field_groups(run, draft.appended["unique"], fields, "unique"))
    sections = _form_sections(run, spots.get("form"), top.get("form"), fields)
    return Entity(
        name=name, label=Label.of(top.get("label"), name),
        plural=Label.of(top.get("plural") or top.get("label"), name),
        module=top.get("module") or "general", title=title,
        fields=MappingProxyType(fields), removed_fields=MappingProxyType(removed),
        parent=parent, indexes=indexes, unique=unique,
        list_columns=columns, list_filters=filters, list_sort=sort, search_fields=search,
        form_sections=sections, workflow=draft.workflow,
        description=Label.of(top["description"]) if top.get("description") else None,
        source=draft.spot.where,
    )


def _default_title(fields: dict[str, Field]) -> str:
    if "name" in fields:
        return "name"
    for fname, f in fields.items():
        if f.type in ("string", "autonumber"):
            return fname
    return "id"


def _default_columns(title: str, fields: dict[str, Field]) -> tuple[str, ...]:
    columns = [title] if title != "id" else ["id"]
    for fname, f in fields.items():
        if len(columns) >= 5:
            break
        if fname != title and f.kind.stored and f.type not in ("text", "json") and not f.hidden:
            columns.append(fname)
    return tuple(columns)


def _field_list(run, spot: Spot | None, key: str | None, names, fields, system=False):
    if not names:
        return ()
    base = (spot / key) if (spot is not None and key) else spot
    result = []
    for i, fname in enumerate(names):
        if fname in fields or (system and fname in SYSTEM_COLUMNS):
            result.append(fname)
        else:
            run.error(base / i, "unknown-field",
                      f"{key or 'search'}: unknown field '{fname}'{did_you_mean(fname, fields)}")
    return tuple(result)


def _parse_sort(run, spot: Spot | None, text, fields) -> tuple[tuple[str, bool], ...]:
    if not text:
        return ()
    result = []
    for part in str(text).split(","):
        part = part.strip()
        descending = part.startswith("-")
        fname = part.lstrip("-+")
        if fname in fields or fname in SYSTEM_COLUMNS:
            if fname in fields and not fields[fname].kind.orderable:
                run.error(spot, "not-sortable", f"sort: field '{fname}' cannot be sorted")
                continue
            result.append((fname, descending))
        else:
            run.error(spot, "unknown-field",
                      f"sort: unknown field '{fname}'{did_you_mean(fname, fields)}")
    return tuple(result)


def _field_groups(run, items, fields, what):
    for group, spot in items:
        good = True
        for i, fname in enumerate(group):
            if fname not in fields and fname not in SYSTEM_COLUMNS:
                run.error(spot / i, "unknown-field",
                          f"{what}: unknown field '{fname}'{did_you_mean(fname, fields)}")
                good = False
            elif fname in fields and not fields[fname].kind.stored:
                run.error(spot / i, "not-stored", f"{what}: field '{fname}' has no column")
                good = False
        if good:
            yield tuple(group)


def _form_sections(run, spot, form, fields) -> tuple[FormSection, ...]:
    if not form or not form.get("sections"):
        shown = tuple(n for n, f in fields.items() if not f.hidden)
        return (FormSection(Label.of(None, "details"), shown),) if shown else ()
    sections = []
    for i, section in enumerate(form["sections"]):
        names = _field_list(run, spot / "sections" / i, "fields", section["fields"], fields)
        sections.append(FormSection(Label.of(section.get("label"), f"section_{i + 1}"), names))
    return tuple(sections)


def _compile_field(run: CheckRun, entity: str, fd: FieldDraft, drafts) -> Field | None:
    spec, spots, fname = fd.spec, fd.spots, fd.name
    type_name = spec.get("type")
    if type_name is None:
        run.error(fd.spot, "missing-key", f"field '{fname}' needs a 'type'", key=True)
        return None
    kind = FIELD_KINDS[type_name]
    good = True
    for key in spec:
        if key not in kind.keys:
            # reported, then ignored: the field itself is still usable for later checks
            run.error(spots[key], "key-not-for-type",
                      f"field '{fname}': key '{key}' does not apply to a field of type "
                      f"{type_name}", key=True)
    values = dict(name=fname, kind=kind, label=Label.of(spec.get("label"), fname),
                  help=Label.of(spec["help"]) if spec.get("help") else None)
    for flag in ("required", "unique", "index", "read_only", "hidden", "track"):
        if flag in spec:
            values[flag] = bool(spec[flag])
    values["renamed_from"] = spec.get("renamed_from")
    values["removed"] = fd.removed

    if type_name in ("enum", "multi_enum"):
        good &= _options(run, fd, values)
    if type_name == "reference":
        good &= _reference(run, fd, values, drafts)
    if type_name == "lines":
        good &= _lines(run, entity, fd, values, drafts)
    if type_name == "rollup":
        good &= _rollup(run, entity, fd, values, drafts)
    if type_name == "autonumber":
        good &= _autonumber(run, fd, values)
    if type_name in ("string", "text"):
        values["max_length"] = spec.get("max_length", 255 if type_name == "string" else None)
        if "pattern" in spec:
            try:
                re.compile(spec["pattern"])
                values["pattern"] = spec["pattern"]
            except re.error as exc:
                run.error(spots["pattern"], "bad-pattern", f"field '{fname}': pattern is not a "
                          f"valid regular expression: {exc}")
                good = False
    if type_name == "decimal":
        values["precision"] = spec.get("precision", 18)
        values["scale"] = spec.get("scale", 2)
        if values["scale"] > values["precision"]:
            run.error(spots["scale"], "bad-value",
                      f"field '{fname}': scale cannot exceed precision")
            good = False
    if type_name == "percent":
        values["min"], values["max"] = 0, 100
    if type_name in ("money", "rollup"):  # checked with the whole entity: check/currencies.py
        values["currency"] = spec.get("currency")
        values["rate_date"] = spec.get("rate_date")
    if type_name == "file":
        good &= _file(run, fd, values, child=bool(drafts[entity].top.get("parent")))
    for bound in ("min", "max"):
        if bound in spec:
            parsed = _bound(run, fd, bound, kind)
            if parsed is _BAD:
                good = False
            else:
                values[bound] = parsed
    if values.get("min") is not None and values.get("max") is not None:
        try:
            if values["min"] > values["max"]:
                run.error(spots.get("min", fd.spot), "bad-value",
                          f"field '{fname}': min is greater than max")
                good = False
        except TypeError:
            pass
    default = spec.get("default")
    if type_name == "json" and isinstance(default, dict) and set(default) != {"expr"}:
        values["default"] = default
    elif default is not None and not isinstance(default, dict):
        literal_like = isinstance(default, str) and (
            type_name in TEXT_KINDS or (type_name in ("date", "datetime") and
                                        re.match(r"^\d{4}-\d{2}-\d{2}", default)))
        try:
            if type_name in TEXT_KINDS and not isinstance(default, str):
                # YAML turns 0012 into 10 and 1.10 into 1.1: text must be written as text
                raise ValueError(f"must be written in quotes for a {type_name} field "
                                 f"(YAML read {default!r})")
            values["default"] = kind.parse_literal(default, values.get("_options", ()))
        except ValueError as exc:
            if isinstance(default, str) and not literal_like:
                pass  # not a literal of the field's type: compiled as an expression later
            else:
                run.error(spots["default"], "bad-default", f"field '{fname}': default {exc}")
                good = False
    if "compute" in spec and type_name in ("lines", "rollup", "autonumber", "file"):
        run.error(spots["compute"], "key-not-for-type",
                  f"field '{fname}': a {type_name} field cannot be computed", key=True)
        good = False
    if spec.get("unique") and type_name in ("lines", "json", "multi_enum", "rollup", "text",
                                            "file"):
        run.error(spots["unique"], "key-not-for-type",
                  f"field '{fname}': a {type_name} field cannot be unique", key=True)
        good = False
    values.pop("_options", None)
    return Field(**values) if good else None


_BAD = object()


def _bound(run, fd: FieldDraft, bound: str, kind):
    value = fd.spec[bound]
    if kind.name == "date":
        try:
            return kind.parse_literal(value)
        except ValueError:
            return None  # an expression, compiled in the second pass
    if not kind.numeric:
        run.error(fd.spots[bound], "key-not-for-type",
                  f"field '{fd.name}': key '{bound}' does not apply to a field of type "
                  f"{kind.name}", key=True)
        return _BAD
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        run.error(fd.spots[bound], "wrong-type", f"field '{fd.name}': {bound} must be a number")
        return _BAD
    return value


def _options(run, fd: FieldDraft, values) -> bool:
    raw = fd.spec.get("options")
    if not raw:
        run.error(fd.spot, "missing-key", f"field '{fd.name}' of type {fd.spec['type']} needs "
                  "'options'", key=True)
        return False
    options, seen, good = [], set(), True
    for i, item in enumerate(raw):
        value = item if isinstance(item, str) else item["value"]
        label = None if isinstance(item, str) else item.get("label")
        if value in seen:
            run.error(fd.spots["options"] / i, "duplicate-option",
                      f"field '{fd.name}': option '{value}' is listed twice")
            good = False
        seen.add(value)
        options.append(Option(value, Label.of(label, value)))
    values["options"] = tuple(options)
    values["_options"] = tuple(o.value for o in options)
    return good


def _reference(run, fd: FieldDraft, values, drafts) -> bool:
    target = fd.spec.get("to")
    if target is None:
        run.error(fd.spot, "missing-key", f"field '{fd.name}' of type reference needs 'to'",
                  key=True)
        return False
    if target != "user" and target not in drafts:
        run.error(fd.spots["to"], "unknown-entity",
                  f"field '{fd.name}': reference to unknown entity '{target}'"
                  f"{did_you_mean(target, list(drafts) + ['user'])}")
        return False
    values["to"] = target
    values["on_delete"] = fd.spec.get("on_delete", "restrict")
    if values["on_delete"] == "set_null" and fd.spec.get("required"):
        run.error(fd.spots["on_delete"], "bad-value",
                  f"field '{fd.name}': on_delete: set_null cannot empty a required field")
        return False
    return True


def _lines(run, entity: str, fd: FieldDraft, values, drafts) -> bool:
    child = fd.spec.get("entity")
    if child is None:
        run.error(fd.spot, "missing-key", f"field '{fd.name}' of type lines needs 'entity'",
                  key=True)
        return False
    if child not in drafts:
        run.error(fd.spots["entity"], "unknown-entity",
                  f"field '{fd.name}': unknown entity '{child}'{did_you_mean(child, drafts)}")
        return False
    if drafts[child].top.get("parent") != entity:
        run.error(fd.spots["entity"], "not-a-child",
                  f"field '{fd.name}': entity '{child}' is not a child of '{entity}' "
                  f"(give it 'parent: {entity}')")
        return False
    values["child_entity"] = child
    return True


def _rollup(run, entity: str, fd: FieldDraft, values, drafts) -> bool:
    spec, spots = fd.spec, fd.spots
    of, agg, target = spec.get("of"), spec.get("agg"), spec.get("field")
    missing = [k for k, v in (("of", of), ("agg", agg)) if v is None]
    if agg is not None and agg != "count" and target is None:
        missing.append("field")
    if missing:
        run.error(fd.spot, "missing-key", f"field '{fd.name}' of type rollup needs "
                  + ", ".join(f"'{m}'" for m in missing), key=True)
        return False
    if "." in of:
        source, link = of.split(".", 1)
        draft = drafts.get(source)
        if draft is None:
            run.error(spots["of"], "unknown-entity", f"field '{fd.name}': of: unknown entity "
                      f"'{source}'{did_you_mean(source, drafts)}")
            return False
        link_field = draft.fields.get(link)
        if link_field is None or link_field.spec.get("type") != "reference" \
                or link_field.spec.get("to") != entity:
            run.error(spots["of"], "bad-rollup", f"field '{fd.name}': '{source}.{link}' is not a "
                      f"reference from {source} to {entity}")
            return False
    else:
        lines = drafts[entity].fields.get(of)
        if lines is None or lines.spec.get("type") != "lines":
            run.error(spots["of"], "bad-rollup", f"field '{fd.name}': of: '{of}' is neither a "
                      f"lines field of {entity} nor 'entity.reference_field'"
                      f"{did_you_mean(of, drafts[entity].fields)}")
            return False
        source = lines.spec.get("entity")
        draft = drafts.get(source)
        if draft is None:
            return False
    if target is not None:
        tf = draft.fields.get(target)
        if tf is None:
            run.error(spots["field"], "unknown-field", f"field '{fd.name}': '{source}' has no "
                      f"field '{target}'{did_you_mean(target, draft.fields)}")
            return False
        kind = FIELD_KINDS.get(tf.spec.get("type", ""))
        # a rollup is a number (API.md: rollup values are decimal strings), so min and max
        # too take numbers; the latest date of related records is a report's max or a compute
        if agg in ("sum", "avg", "min", "max") and (kind is None or not kind.numeric):
            run.error(spots["field"], "bad-rollup", f"field '{fd.name}': cannot {agg} "
                      f"'{source}.{target}', which is not a number (a rollup is a number)")
            return False
    values.update(rollup_of=of, rollup_field=target, rollup_agg=agg)
    return True


def _file(run, fd: FieldDraft, values, child: bool) -> bool:
    """`max_mb` and `accept` of a file field; a file takes no default and no index, and
    belongs to a record of its own (a child's rows are edited inside the parent's form)."""
    good = True
    if child:
        run.error(fd.spot, "file-in-child", f"field '{fd.name}': a child entity cannot have a "
                  "file field; put it on the parent entity, or attach the file to the parent "
                  "record", key=True)
        good = False
    for key in ("default", "index"):
        if key in fd.spec:
            run.error(fd.spots[key], "key-not-for-type",
                      f"field '{fd.name}': a file field takes no '{key}'", key=True)
            fd.spec.pop(key)  # reported once here, not again as a bad default
            good = False
    values["max_mb"] = fd.spec.get("max_mb")
    accept = []
    for i, entry in enumerate(fd.spec.get("accept") or ()):
        entry = entry.strip().lower()
        if not known_accept(entry):
            hint = " (text files are recognised as text/plain)" if entry.startswith("text/") \
                else did_you_mean(entry, KNOWN_TYPES)
            run.error(fd.spots["accept"] / i, "bad-value",
                      f"field '{fd.name}': accept: '{entry}' is not a content type the engine "
                      f"recognises from a file's bytes{hint}")
            good = False
        elif entry not in accept:
            accept.append(entry)
    values["accept"] = tuple(accept)
    return good


def _autonumber(run, fd: FieldDraft, values) -> bool:
    pattern = fd.spec.get("pattern", "{seq:6}")
    tokens = _NUMBER_TOKEN.findall(pattern)
    bad = [t for t, _ in tokens if t not in _NUMBER_TOKENS]
    if bad or not any(t == "seq" for t, _ in tokens):
        problem = (f"unknown token '{{{bad[0]}}}'" if bad else "it needs a {seq:N} token")
        run.error(fd.spots.get("pattern", fd.spot), "bad-pattern",
                  f"field '{fd.name}': autonumber pattern '{pattern}': {problem} "
                  "(tokens: {YYYY} {YY} {MM} {DD} {seq:N})")
        return False
    values["number_pattern"] = pattern
    values["unique"] = True
    return True


def compile_entity_expressions(run: CheckRun, drafts: dict[str, EntityDraft],
                               entities: dict[str, Entity]) -> dict[str, Entity]:
    """Second pass: compile every expression of every entity against typed samples."""
    result = {}
    for name, entity in entities.items():
        draft = drafts[name]
        scope = record_scope(entity, entities)
        new_fields = {}
        for fname, fld in entity.fields.items():
            new_fields[fname] = _field_expressions(run, draft.fields[fname], fld, scope,
                                                   entity, entities)
        validations = []
        for rule, spot in draft.appended["validations"]:
            expr, _ = compile_expression(run, spot / "rule", rule["rule"], scope,
                                         what="validation rule", want_bool=True)
            if expr is not None:
                validations.append(Validation(expr, Label.of(rule.get("message") or
                                                             f"Rule failed: {rule['rule']}")))
        sections = []
        form = draft.top.get("form") or {}
        for i, section in enumerate(entity.form_sections):
            visible = None
            raw = (form.get("sections") or [{}] * (i + 1))[i] if form.get("sections") else {}
            if raw.get("visible_if"):
                visible, _ = compile_expression(run, draft.top_spots["form"] / "sections" / i /
                                                "visible_if", raw["visible_if"], scope,
                                                what="visible_if", want_bool=True)
            sections.append(dataclasses.replace(section, visible_if=visible))
        rules = _assignment(run, draft, entity, scope)
        result[name] = dataclasses.replace(
            entity, fields=MappingProxyType(new_fields), validations=tuple(validations),
            form_sections=tuple(sections), assignment=rules)
    return result


def _assignment(run, draft: EntityDraft, entity: Entity, scope) -> tuple:
    rules = []
    spot = draft.top_spots.get("assignment")
    for i, raw in enumerate(draft.top.get("assignment") or []):
        rspot = spot / i
        kinds = [k for k in ("round_robin", "by_field", "user") if k in raw]
        if len(kinds) != 1:
            run.error(rspot, "assignment-kind", "an assignment rule takes exactly one of "
                      "round_robin, by_field and user", key=True)
            continue
        when = None
        if "when" in raw:
            when, _ = compile_expression(run, rspot / "when", raw["when"], scope,
                                         what="assignment when", want_bool=True)
            if when is None:
                continue
        kind = kinds[0]
        if kind == "round_robin":
            spec = raw[kind]
            if ("role" in spec) == ("users" in spec):
                run.error(rspot / kind, "assignment-kind", "round_robin takes either 'role' or "
                          "'users'", key=True)
                continue
            rules.append(AssignmentRule(kind, when, role=spec.get("role"),
                                        users=tuple(spec.get("users") or ()), index=i))
        elif kind == "by_field":
            spec = raw[kind]
            if spec["field"] not in entity.fields:
                run.error(rspot / kind / "field", "unknown-field", f"assignment: "
                          f"'{entity.name}' has no field '{spec['field']}'"
                          f"{did_you_mean(spec['field'], entity.fields)}")
                continue
            rules.append(AssignmentRule(kind, when, field=spec["field"],
                                        mapping=MappingProxyType(dict(spec["map"])), index=i))
        else:
            rules.append(AssignmentRule(kind, when, users=(raw["user"],), index=i))
    return tuple(rules)


def _field_expressions(run, fd: FieldDraft, fld: Field, scope, entity: Entity,
                       entities) -> Field:
    changes = {}
    what = f"field '{fld.name}'"
    for key in ("visible_if", "required_if", "read_only_if"):
        if key in fd.spec:
            changes[key], _ = compile_expression(run, fd.spots[key], fd.spec[key], scope,
                                                 what=f"{what} {key}", want_bool=True)
    if "compute" in fd.spec:
        expr, sample = compile_expression(run, fd.spots["compute"], fd.spec["compute"], scope,
                                          what=f"{what} compute")
        if expr is not None and not fits_field(fld, sample):
            run.error(fd.spots["compute"], "expr-type", f"{what} compute: gives "
                      f"{describe(sample)}, which cannot be stored in a {fld.type} field")
        changes["compute"] = expr
    default = fd.spec.get("default")
    if default is not None and fld.default is None:
        source = default.get("expr") if isinstance(default, dict) else default
        if not isinstance(source, str):
            run.error(fd.spots["default"], "bad-default",
                      f"{what}: a default map must be {{expr: \"...\"}}")
        else:
            expr, sample = compile_expression(run, fd.spots["default"], source, scope,
                                              what=f"{what} default")
            if expr is not None and not fits_field(fld, sample):
                run.error(fd.spots["default"], "expr-type", f"{what} default: gives "
                          f"{describe(sample)}, which cannot be stored in a {fld.type} field")
            changes["default_expr"] = expr
    for bound in ("min", "max"):
        if fld.type == "date" and bound in fd.spec and getattr(fld, bound) is None:
            changes[bound], _ = compile_expression(run, fd.spots[bound], fd.spec[bound], scope,
                                                   what=f"{what} {bound}")
    if fld.type == "rollup" and "where" in fd.spec:
        source_entity = (fld.rollup_of.split(".")[0] if "." in fld.rollup_of else
                         entity.fields[fld.rollup_of].child_entity)
        child = entities.get(source_entity or "")
        if child is not None:
            where, _ = compile_expression(run, fd.spots["where"], fd.spec["where"],
                                          record_scope(child, entities), what=f"{what} where",
                                          want_bool=True)
            if where is not None and check_sql_subset(run, fd.spots["where"], fd.spec["where"],
                                                      f"{what} where"):
                changes["rollup_where"] = where
    return dataclasses.replace(fld, **changes) if changes else fld

