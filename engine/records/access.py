"""Who is acting, and what their roles let them do (DSL §6).

A user's roles combine to the most generous grant: an action is `all` if any role grants
`all`; else `rule` if any role grants a sharing rule (the records of any of those rules, and
the user's own where a role grants `own`); else `own` if any grants `own`. A field is hidden
only if every role that may read the entity hides it, read-only if no such role leaves it
writable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from engine.registry.model import Entity, Registry, SharingRule

_RANK = {None: 0, "own": 1, "rule": 2, "all": 3}
RULED = ("read", "update", "delete")


@dataclass(frozen=True)
class Caller:
    """The acting user: id, roles and the language messages are rendered in."""

    user_id: int | None
    roles: tuple[str, ...] = ()
    locale: str = "en"
    username: str = ""
    display_name: str = ""
    email: str | None = None
    system: bool = False  # the engine itself (seeding, automations): every permission

    @property
    def is_admin(self) -> bool:
        return self.system or "admin" in self.roles

    def scope(self) -> dict:
        """The `user` an expression sees."""
        return {"id": self.user_id, "username": self.username,
                "display_name": self.display_name, "email": self.email,
                "roles": list(self.roles), "locale": self.locale}


SYSTEM = Caller(user_id=None, roles=("admin",), system=True, username="system",
                display_name="System")


@dataclass(frozen=True)
class Access:
    """What one caller may do with one entity, precomputed per request."""

    read: str | None
    create: str | None
    update: str | None
    delete: str | None
    change_owner: str | None
    hidden: frozenset[str] = field(default_factory=frozenset)
    read_only: frozenset[str] = field(default_factory=frozenset)
    # for an action that is "rule": its sharing rules, and whether own records count too
    rules: Mapping[str, tuple[SharingRule, ...]] = field(default_factory=dict)
    owned: frozenset[str] = field(default_factory=frozenset)


def access_for(registry: Registry, caller: Caller, entity: Entity) -> Access:
    """Return the caller's grants on `entity` (a child entity follows its parent)."""
    if entity.parent:
        parent_entity = registry.entities[entity.parent]
        parent = access_for(registry, caller, parent_entity)
        hidden, read_only = _field_rules(registry, caller, entity, parent_entity.name)
        return Access(parent.read, parent.update, parent.update, parent.update, None,
                      hidden, read_only)
    if caller.is_admin:
        return Access("all", "all", "all", "all", "all")
    grants = {a: None for a in ("read", "create", "update", "delete", "change_owner")}
    rules: dict[str, list[SharingRule]] = {a: [] for a in RULED}
    owned: set[str] = set()
    hidden_votes: list[set[str]] = []
    writable: set[str] = set()
    for role_name in caller.roles:
        role = registry.roles.get(role_name)
        if role is None:
            continue
        entity_access = role.entities.get(entity.name)
        if entity_access is None:
            continue
        for action in grants:
            value = getattr(entity_access, action)
            if isinstance(value, SharingRule):
                rules[action].append(value)
                if value.own:
                    owned.add(action)
                value = "rule"
            elif value == "own":
                owned.add(action)
            if _RANK[value] > _RANK[grants[action]]:
                grants[action] = value
        if entity_access.read is None:
            continue
        hides = {f for f in entity.fields
                 if role.fields.get(f"{entity.name}.{f}") == "hidden"}
        hidden_votes.append(hides)
        if entity_access.update or entity_access.create:
            writable.update(f for f in entity.fields
                            if role.fields.get(f"{entity.name}.{f}") is None)
    hidden = frozenset(set.intersection(*hidden_votes)) if hidden_votes else frozenset()
    read_only = frozenset(f for f in entity.fields if f not in writable) - hidden
    ruled = {a: tuple(rules[a]) for a in RULED if grants[a] == "rule"}
    return Access(hidden=hidden, read_only=read_only, rules=MappingProxyType(ruled),
                  owned=frozenset(a for a in owned if grants[a] == "rule"), **grants)


def _field_rules(registry: Registry, caller: Caller, child: Entity,
                 parent: str) -> tuple[frozenset, frozenset]:
    """Field rules on a child entity's fields (`item.price: hidden`), for the roles that may
    read its parent; combined like an entity's own (hidden only if every such role hides)."""
    if caller.is_admin:
        return frozenset(), frozenset()
    votes, writable = [], set()
    for role_name in caller.roles:
        role = registry.roles.get(role_name)
        grant = role.entities.get(parent) if role else None
        if grant is None or grant.read is None:
            continue
        votes.append({f for f in child.fields if role.fields.get(f"{child.name}.{f}") == "hidden"})
        if grant.update:
            writable.update(f for f in child.fields if role.fields.get(f"{child.name}.{f}") is None)
    hidden = frozenset(set.intersection(*votes)) if votes else frozenset()
    return hidden, frozenset(f for f in child.fields if f not in writable) - hidden
