"""User accounts in the engine (engine/records/users.py): creation, profile, roles, enabling
and disabling, passwords, the last admin, and the audit trail without password hashes."""

import json

import pytest
import sqlalchemy as sa

from engine.errors import Conflict, NotFound, ValidationFailed
from engine.records.users import generate_password, password_problems


def audit_of(world, user_id):
    audit = world.service.schema.engine["audit"]
    with world.engine.connect() as conn:
        return [(r.action, r.user_id, r.changes) for r in conn.execute(
            sa.select(audit).where(audit.c.entity == "user", audit.c.record_id == user_id)
            .order_by(audit.c.id))]


def problems(caught):
    return {name: [key for key, _ in items]
            for name, items in caught.value.extra["problems"].items()}


def test_password_policy():
    assert password_problems("") == [("required", {})]
    assert password_problems("abc123") == [("password_short", {"n": 8})]
    assert password_problems("Alice-Smith", "alice-smith") == [("password_username", {})]
    assert password_problems("password1") == [("password_weak", {})]
    assert password_problems("abababab") == [("password_weak", {})]
    assert password_problems("correct horse") == []
    assert all(not password_problems(generate_password()) for _ in range(20))


def test_create_is_audited_without_the_password(world):
    boss = world.user("boss", "admin")
    user_id = world.users.create("ann", "s3cret-pass", ["rep"], display_name="Ann",
                                 email="ann@example.com", actor=boss, enforce_policy=True)
    (action, actor, changes), = audit_of(world, user_id)
    assert (action, actor) == ("user:create", boss.user_id)
    assert changes == {"username": [None, "ann"], "display_name": [None, "Ann"],
                       "email": [None, "ann@example.com"], "roles": [None, ["rep"]],
                       "active": [None, True]}
    assert "scrypt" not in json.dumps(changes) and "s3cret" not in json.dumps(changes)
    user = world.users.get(user_id)
    assert user["roles"] == ["rep"] and user["active"] and "password_hash" not in user


def test_create_refusals_name_their_fields(world):
    world.users.create("ann", "pw", ["rep"])  # the command line's rule: a password at all
    with pytest.raises(Conflict) as caught:
        world.users.create("ANN", "another-pass", ["rep"])
    assert problems(caught) == {"username": ["username_taken"]}
    with pytest.raises(ValidationFailed) as caught:
        world.users.create("bob", "short", ["nosuch"], email="nope", enforce_policy=True)
    assert problems(caught) == {"roles": ["unknown_role"]}
    with pytest.raises(ValidationFailed) as caught:
        world.users.create("b o b", "short", ["rep"], email="nope", enforce_policy=True)
    assert problems(caught) == {"username": ["username_chars"], "email": ["not_email"],
                                "password": ["password_short"]}
    with pytest.raises(ValidationFailed) as caught:
        world.users.create("carol", "", ["rep"])
    assert problems(caught) == {"password": ["required"]}
    assert world.users.by_username("bob") is None and world.users.by_username("carol") is None


def test_update_and_roles_are_audited_old_and_new(world):
    boss = world.user("boss", "admin")
    user_id = world.users.create("ann", "pw", ["rep"])
    assert world.users.update(user_id, display_name="Ann Lee", email="ann@example.com",
                              actor=boss) == {"display_name": ["ann", "Ann Lee"],
                                              "email": [None, "ann@example.com"]}
    assert world.users.update(user_id, display_name="Ann Lee", email="ann@example.com",
                              actor=boss) == {}  # nothing changed: no entry
    assert world.users.set_roles(user_id, ["manager", "rep"], actor=boss) == {
        "roles": [["rep"], ["manager", "rep"]]}
    with pytest.raises(ValidationFailed) as caught:
        world.users.set_roles(user_id, ["rep", "nosuch"], actor=boss)
    assert problems(caught) == {"roles": ["unknown_role"]}
    with pytest.raises(ValidationFailed) as caught:
        world.users.update(user_id, display_name=" ", email="x", actor=boss)
    assert problems(caught) == {"email": ["not_email"], "display_name": ["required"]}
    assert [a for a, _, _ in audit_of(world, user_id)] == ["user:create", "user:update",
                                                           "user:roles"]
    assert world.users.get(user_id)["roles"] == ["manager", "rep"]
    with pytest.raises(NotFound):
        world.users.update(999, display_name="x")


def test_edit_is_all_or_nothing(world):
    boss = world.user("boss", "admin")
    with pytest.raises(Conflict):  # the roles are refused: the new name is not kept either
        world.users.edit(boss.user_id, display_name="Big Boss", email=None, roles=["rep"],
                         actor=boss)
    user = world.users.get(boss.user_id)
    assert user["display_name"] == "boss" and user["roles"] == ["admin"]


def test_last_admin_and_self_protection(world):
    boss = world.user("boss", "admin")
    with pytest.raises(Conflict) as caught:
        world.users.set_roles(boss.user_id, ["rep"], actor=boss)
    assert problems(caught) == {"roles": ["own_admin"]}
    with pytest.raises(Conflict) as caught:
        world.users.set_active(boss.user_id, False, actor=boss)
    assert problems(caught) == {"active": ["disable_self"]}
    with pytest.raises(Conflict) as caught:  # the engine itself (no actor): the last admin
        world.users.set_roles(boss.user_id, ["rep"])
    assert problems(caught) == {"roles": ["last_admin"]}
    with pytest.raises(Conflict) as caught:
        world.users.set_active(boss.user_id, False)
    assert problems(caught) == {"active": ["last_admin"]}
    other = world.user("other", "admin")
    world.users.set_roles(boss.user_id, ["rep"], actor=other)  # another admin remains
    with pytest.raises(Conflict):
        world.users.set_active(other.user_id, False)
    # a disabled admin does not count: the active one stays
    world.users.set_roles(boss.user_id, ["admin"], actor=other)
    world.users.set_active(boss.user_id, False, actor=other)
    with pytest.raises(Conflict) as caught:
        world.users.set_roles(other.user_id, [], actor=None)
    assert problems(caught) == {"roles": ["last_admin"]}
    assert world.users.get(boss.user_id)["roles"] == ["admin"]


def test_disable_ends_sign_in_and_tokens_enable_restores_sign_in(world):
    from web.auth import Tokens
    boss = world.user("boss", "admin")
    user_id = world.users.create("ann", "pw-ann", ["rep"])
    tokens = Tokens(world.engine, world.service.schema, 30)
    token = tokens.issue(user_id)
    assert world.users.authenticate("ann", "pw-ann") == user_id
    assert world.users.get(user_id)["last_login_at"] is not None
    assert world.users.set_active(user_id, False, actor=boss) == {"active": [True, False]}
    assert world.users.authenticate("ann", "pw-ann") is None
    assert tokens.user_for(token) is None  # revoked, so enabling does not bring it back
    with pytest.raises(NotFound):
        world.users.caller(user_id)
    assert world.users.set_active(user_id, False, actor=boss) == {}
    world.users.set_active(user_id, True, actor=boss)
    assert world.users.authenticate("ann", "pw-ann") == user_id
    assert tokens.user_for(token) is None
    assert [a for a, _, _ in audit_of(world, user_id)] == ["user:create", "user:disable",
                                                           "user:enable"]


def test_set_password_checks_the_policy_revokes_tokens_and_audits_no_hash(world):
    from web.auth import Tokens, _hash
    boss = world.user("boss", "admin")
    user_id = world.users.create("ann", "pw-ann", ["rep"])
    tokens = Tokens(world.engine, world.service.schema, 30)
    kept, dropped = tokens.issue(user_id), tokens.issue(user_id)
    with pytest.raises(ValidationFailed) as caught:
        world.users.set_password(user_id, "ann", actor=boss)
    assert problems(caught) == {"password": ["password_short"]}
    world.users.set_password(user_id, "a new secret", actor=boss, keep_token_hash=_hash(kept))
    assert world.users.authenticate("ann", "pw-ann") is None
    assert world.users.authenticate("ann", "a new secret") == user_id
    assert tokens.user_for(kept) == user_id and tokens.user_for(dropped) is None
    entries = audit_of(world, user_id)
    assert entries[-1] == ("user:password", boss.user_id, {})
    assert "scrypt" not in json.dumps([c for _, _, c in entries])


def test_find_searches_names_and_emails_and_pages(world):
    for name, display, email in (("ann", "Ann Lee", "ann@a.com"), ("bob", "Bob 100%", None),
                                 ("cat", "Cat", "meow@b.com")):
        world.users.create(name, "pw", ["rep"], display_name=display, email=email)
    assert [u["username"] for u in world.users.find("LEE")] == ["ann"]
    assert [u["username"] for u in world.users.find("meow")] == ["cat"]
    assert [u["username"] for u in world.users.find("100%")] == ["bob"]
    assert [u["username"] for u in world.users.find("_")] == []  # literal, not a wildcard
    assert [u["username"] for u in world.users.find(limit=2)] == ["ann", "bob"]
    assert [u["username"] for u in world.users.find(after="bob")] == ["cat"]
