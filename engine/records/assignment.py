"""Routing a new record to the responsible person (owner), declared in the entity's YAML.

```yaml
assignment:
  - when: "region == 'east'"                 # optional condition on the new record
    round_robin: {role: sales_rep}            # or {users: [alice, bob]}
  - by_field: {field: product_line, map: {pumps: carol, valves: dave}}
  - user: erin                                # a fallback
```
The first rule whose condition holds and that names an active user sets `owner`; a record
created with an explicit owner (by someone who may change owners) is left alone. Round-robin
turns are counted in the database, so they are fair across processes.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.expr import EvaluationError
from engine.records.numbering import bump
from engine.registry.model import AssignmentRule, Entity


def assign_owner(service, conn, caller, entity: Entity, values: dict) -> int | None:
    """Return the owner the entity's assignment rules pick for a new record, or None."""
    if not entity.assignment:
        return None
    scope = None
    for rule in entity.assignment:
        if rule.when is not None:
            if scope is None:
                scope = service._scope(conn, caller, entity, values)
            try:
                if not rule.when.test(scope):
                    continue
            except EvaluationError:
                continue
        user_id = _pick(service, conn, entity, rule, values)
        if user_id is not None:
            return user_id
    return None


def _user_ids(service, conn, usernames) -> list[int]:
    users = service.users
    rows = conn.execute(sa.select(users.c.id, users.c.username).where(
        users.c.username.in_(list(usernames)), users.c.active)).all()
    by_name = {name: uid for uid, name in rows}
    return [by_name[n] for n in usernames if n in by_name]


def _pick(service, conn, entity: Entity, rule: AssignmentRule, values: dict) -> int | None:
    if rule.kind == "user":
        found = _user_ids(service, conn, rule.users)
        return found[0] if found else None
    if rule.kind == "by_field":
        username = rule.mapping.get(str(values.get(rule.field)))
        found = _user_ids(service, conn, [username]) if username else []
        return found[0] if found else None
    if rule.role:
        roles = service.schema.engine["user_role"]
        users = service.users
        candidates = [r[0] for r in conn.execute(
            sa.select(users.c.id).join(roles, roles.c.user_id == users.c.id)
            .where(roles.c.role == rule.role, users.c.active).order_by(users.c.id))]
    else:
        candidates = _user_ids(service, conn, rule.users)
    if not candidates:
        return None
    turn = bump(conn, service.schema, f"assign:{entity.name}:{rule.index}")
    return candidates[(int(turn) - 1) % len(candidates)]
