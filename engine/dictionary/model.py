"""The data dictionary: what a compiled registry says about each entity, workflow and role.

One model, built once from the registry alone, feeds both outputs (the admin pages of
web/dictionary.py and the static files of `crm docs`). It keeps labels as `Label`s and
expressions as their source text: the renderers pick the language. Who may read and write a
field is worked out by `engine.records.access.access_for`, the function the record service
enforces, so the dictionary can never promise what the engine refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from engine.records.access import Caller, access_for
from engine.registry.labels import Label
from engine.registry.model import ACTIONS, Entity, Field, Registry, Role, SharingRule, Workflow

ADMIN = "admin"


@dataclass(frozen=True)
class Rule:
    """One rule of a field: `kind` names it (required, compute, min...), `text` gives its
    value (an expression's source, a number, a pattern) or is empty for a plain flag."""

    kind: str
    text: str = ""


@dataclass(frozen=True)
class FieldEntry:
    field: Field
    type_text: str  # "string (max 200)", "reference -> customer": language-free
    rules: tuple[Rule, ...]
    readers: tuple[str, ...]  # role names, admin included
    writers: tuple[str, ...]
    hidden_from: tuple[str, ...]  # roles that may read the entity but not this field
    read_only_for: tuple[str, ...]  # roles that may write the entity but not this field


@dataclass(frozen=True)
class Grant:
    """What one role may do with one entity: action -> "all" | "own" | "rule" (None: no)."""

    actions: Mapping[str, str | None]
    rules: Mapping[str, tuple[SharingRule, ...]]  # for actions that are "rule"
    own_too: frozenset[str]  # "rule" actions that also cover the user's own records
    via_parent: str | None = None  # a child entity follows its parent's grants

    @property
    def any(self) -> bool:
        return any(self.actions.values())


@dataclass(frozen=True)
class Reference:
    """An arrow between two entities: a reference field, or a lines field to its child."""

    source: str
    field: str
    target: str  # an entity name, or "user"
    kind: str  # "reference" | "lines"
    required: bool


@dataclass(frozen=True)
class EntityPage:
    entity: Entity
    fields: tuple[FieldEntry, ...]
    grants: Mapping[str, Grant]  # role -> grant, every role in dictionary order
    workflow: Workflow | None
    references_out: tuple[Reference, ...]
    references_in: tuple[Reference, ...]
    children: tuple[str, ...]


@dataclass(frozen=True)
class ModuleGroup:
    name: str
    label: Label
    entities: tuple[str, ...]


@dataclass(frozen=True)
class Dictionary:
    """Everything the dictionary shows, in display order."""

    registry: Registry
    pages: Mapping[str, EntityPage]
    modules: tuple[ModuleGroup, ...]
    roles: tuple[Role, ...]
    references: tuple[Reference, ...]

    def grant(self, role: str, entity: str) -> Grant:
        return self.pages[entity].grants[role]


def build_dictionary(registry: Registry) -> Dictionary:
    """Return the dictionary of a compiled registry."""
    roles = _ordered_roles(registry)
    references = tuple(_references(registry))
    pages = {}
    for entity in registry.entities.values():
        accesses = {role.name: access_for(registry, Caller(None, (role.name,)), entity)
                    for role in roles}
        pages[entity.name] = EntityPage(
            entity=entity,
            fields=tuple(_field_entry(registry, entity, f, accesses)
                         for f in entity.fields.values()),
            grants=MappingProxyType({name: _grant(entity, a) for name, a in accesses.items()}),
            workflow=registry.workflow_by_entity.get(entity.name),
            references_out=tuple(r for r in references if r.source == entity.name),
            references_in=tuple(r for r in references if r.target == entity.name),
            children=tuple(e.name for e in registry.entities.values()
                           if e.parent == entity.name))
    return Dictionary(registry, MappingProxyType(pages), _modules(registry), roles, references)


def _ordered_roles(registry: Registry) -> tuple[Role, ...]:
    # admin first (it may do everything, and says so), then the others by name
    return tuple(sorted(registry.roles.values(), key=lambda r: (r.name != ADMIN, r.name)))


def _modules(registry: Registry) -> tuple[ModuleGroup, ...]:
    found: dict[str, list[str]] = {}
    for entity in registry.entities.values():
        found.setdefault(entity.module, []).append(entity.name)
    groups = []
    for name, members in found.items():
        module = registry.modules.get(name)
        groups.append((module.order if module else 1000, name, ModuleGroup(
            name, module.label if module else Label.of(None, name), tuple(members))))
    return tuple(g for _, _, g in sorted(groups, key=lambda g: (g[0], g[1])))


def _references(registry: Registry):
    for entity in registry.entities.values():
        for f in entity.fields.values():
            if f.type == "reference" and f.to:
                yield Reference(entity.name, f.name, f.to, "reference", f.required)
            elif f.type == "lines" and f.child_entity:
                yield Reference(entity.name, f.name, f.child_entity, "lines", False)


def _grant(entity: Entity, access) -> Grant:
    actions = {a: getattr(access, a) for a in ACTIONS}
    return Grant(MappingProxyType(actions), MappingProxyType(dict(access.rules)),
                 frozenset(access.owned), entity.parent)


def _field_entry(registry: Registry, entity: Entity, f: Field, accesses) -> FieldEntry:
    readers, writers, hidden_from, read_only_for = [], [], [], []
    workflow = registry.workflow_by_entity.get(entity.name)
    # the state field changes only through a transition (DSL §5): nobody writes it directly
    writable = f.writable and not (workflow is not None and workflow.field == f.name)
    for role, access in accesses.items():
        if access.read is None:
            continue
        if f.name in access.hidden:
            hidden_from.append(role)
            continue
        readers.append(role)
        if not (access.create or access.update):
            continue
        if f.name in access.read_only:
            read_only_for.append(role)
        elif writable:
            writers.append(role)
    return FieldEntry(f, type_text(f), tuple(field_rules(registry, entity, f)),
                      tuple(readers), tuple(writers), tuple(hidden_from), tuple(read_only_for))


def type_text(f: Field) -> str:
    """Return the field's type with what qualifies it: "reference -> customer", "decimal(18,2)"."""
    if f.type == "reference":
        return f"reference -> {f.to}"
    if f.type == "lines":
        return f"lines -> {f.child_entity}"
    if f.type == "decimal":
        return f"decimal({f.precision or 18},{f.scale if f.scale is not None else 2})"
    if f.type == "rollup":
        return f"rollup: {f.rollup_agg}({f.rollup_of}" + \
            (f".{f.rollup_field})" if f.rollup_field else ")")
    return f.type


def field_rules(registry: Registry, entity: Entity, f: Field):
    """Yield the rules of a field, in the order a consultant reads them."""
    if f.required:
        yield Rule("required")
    if f.required_if is not None:
        yield Rule("required_if", f.required_if.source)
    if f.unique:
        yield Rule("unique")
    for kind in ("max_length", "pattern", "min", "max", "currency", "rate_date",
                 "number_pattern"):
        value = getattr(f, kind)
        if value is not None:
            yield Rule(kind, _literal(value))
    if f.default is not None:
        yield Rule("default", _literal(f.default))
    if f.default_expr is not None:
        yield Rule("default", f.default_expr.source)
    if f.compute is not None:
        yield Rule("compute", f.compute.source)
    if f.type == "rollup" and f.rollup_where is not None:
        yield Rule("rollup_where", f.rollup_where.source)
    if f.type == "reference":
        yield Rule("on_delete", f.on_delete)
    if f.read_only:
        yield Rule("read_only")
    if f.read_only_if is not None:
        yield Rule("read_only_if", f.read_only_if.source)
    if f.visible_if is not None:
        yield Rule("visible_if", f.visible_if.source)
    if f.hidden:
        yield Rule("hidden")
    if f.index:
        yield Rule("index")
    if not f.track:
        yield Rule("not_tracked")
    if f.name in entity.search_fields:
        yield Rule("searched")
    if entity.title == f.name:
        yield Rule("title")
    workflow = registry.workflow_by_entity.get(entity.name)
    if workflow is not None and workflow.field == f.name:
        yield Rule("workflow_state", workflow.name)


def _literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)
