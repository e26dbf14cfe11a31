"""Users and their roles: creation, changes, password hashing and look-up as a `Caller`.

Every change of an account (creation, name and email, roles, enabling and disabling, a new
password) is audited in `crm_audit` (entity "user", action "user:<what>") in the transaction
that makes it; a password hash never reaches the audit trail. A refusal is a RecordError whose
`extra["problems"]` names, per field, a message key and its parameters (see `MESSAGES`), so an
interface can word it in the user's language; `message` and `fields` are in English.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets

import sqlalchemy as sa

from engine.errors import Conflict, NotFound, ValidationFailed
from engine.records.access import Caller
from engine.registry.model import Registry
from engine.storage.database import write_transaction
from engine.storage.tables import Schema

UTC = dt.timezone.utc
# scrypt: a slow, salted, memory-hard KDF from the standard library (n=2^15 ~ 32 MiB, ~50 ms)
_N, _R, _P = 2 ** 15, 8, 1
ADMIN = "admin"
MIN_PASSWORD = 8
# refused outright by the password policy, whatever their length
COMMON_PASSWORDS = frozenset({
    "password", "password1", "password123", "passw0rd", "12345678", "123456789", "1234567890",
    "qwertyuiop", "qwerty123", "iloveyou", "abc12345", "abcd1234", "11111111", "00000000",
    "admin123", "administrator", "letmein1", "welcome1", "changeme", "1q2w3e4r", "zaq12wsx",
    "a1b2c3d4", "87654321", "asdfghjk", "123123123", "5201314520"})
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# English texts of the refusals; interfaces translate the keys (web/i18n.py: "user_<key>")
MESSAGES = {
    "required": "is required",
    "username_length": "must be 1 to 150 characters",
    "username_chars": "may not contain spaces or control characters",
    "username_taken": "is taken by another user",
    "too_long": "must be at most {n} characters",
    "not_email": "must be an email address",
    "unknown_role": "unknown role '{role}'",
    "password_short": "must be at least {n} characters",
    "password_username": "must not be the username",
    "password_weak": "is too easy to guess",
    "own_admin": "you cannot remove your own admin role",
    "last_admin": "the site needs at least one active admin",
    "disable_self": "you cannot disable your own account",
}
_SENTENCES = frozenset({"unknown_role", "own_admin", "last_admin", "disable_self"})


def _refuse(kind, problems: dict[str, list[tuple[str, dict]]]):
    """Build a refusal of `kind` (a RecordError class) from {field: [(key, params)]}."""
    fields = {name: [MESSAGES[key].format(**params) for key, params in items]
              for name, items in problems.items()}
    name, items = next(iter(problems.items()))
    first = fields[name][0]
    # a sentence of its own, or a field's complaint that needs the field's name
    message = first if items[0][0] in _SENTENCES else f"{name}: {first}"
    return kind(message, fields, problems=problems)


def password_problems(password: str, username: str = "") -> list[tuple[str, dict]]:
    """Return what the password policy finds wrong with a new password (empty: none)."""
    if not password:
        return [("required", {})]
    if len(password) < MIN_PASSWORD:
        return [("password_short", {"n": MIN_PASSWORD})]
    if username and password.strip().lower() == username.strip().lower():
        return [("password_username", {})]
    if password.lower() in COMMON_PASSWORDS or len(set(password)) < 4:
        return [("password_weak", {})]
    return []


def generate_password() -> str:
    """Return a random password that passes the policy (about 96 bits)."""
    while True:
        password = secrets.token_urlsafe(12)
        if not password_problems(password):
            return password


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=2 ** 26)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                               p=int(p), maxmem=2 ** 26)
    return hmac.compare_digest(candidate.hex(), digest)


_dummy_hash: str | None = None


def dummy_hash() -> str:
    """A fixed hash to check a password against when the username is unknown: made once,
    so an unknown name costs one key derivation, like a known one (no timing difference)."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    return _dummy_hash


class Users:
    """The engine's user accounts."""

    def __init__(self, registry: Registry, engine: sa.Engine, schema: Schema):
        self.registry, self.engine = registry, engine
        self.users = schema.engine["user"]
        self.user_roles = schema.engine["user_role"]
        self.audit = schema.engine["audit"]
        self.tokens = schema.engine["token"]

    def create(self, username: str, password: str, roles: list[str], *,
               display_name: str | None = None, email: str | None = None,
               locale: str | None = None, actor: Caller | None = None,
               enforce_policy: bool = False) -> int:
        """Create a user with roles; refuse unknown roles and taken usernames.

        The password policy (`password_problems`) applies with `enforce_policy` (the admin
        console); the command line and tests only require a password.
        """
        self._check_roles(roles)
        username = username.strip()
        problems: dict[str, list] = {}
        if not username or len(username) > 150:
            problems["username"] = [("username_length", {})]
        elif enforce_policy and (_CONTROL.search(username) or any(c.isspace() for c in username)):
            problems["username"] = [("username_chars", {})]
        display_name, email = (display_name or "").strip() or None, (email or "").strip() or None
        problems.update(self._profile_problems(display_name, email))
        found = password_problems(password, username) if enforce_policy else \
            ([] if password else [("required", {})])
        if found:
            problems["password"] = found
        if problems:
            raise _refuse(ValidationFailed, problems)
        hashed = hash_password(password)
        now = dt.datetime.now(UTC)
        with write_transaction(self.engine) as conn:
            taken = conn.execute(sa.select(self.users.c.id).where(
                sa.func.lower(self.users.c.username) == username.lower())).first()
            if taken:
                raise Conflict(f"user '{username}' exists already",
                               {"username": [MESSAGES["username_taken"]]},
                               problems={"username": [("username_taken", {})]})
            user_id = conn.execute(self.users.insert().values(
                username=username, display_name=display_name or username, email=email,
                password_hash=hashed, locale=locale, active=True,
                created_at=now)).inserted_primary_key[0]
            roles = list(dict.fromkeys(roles))
            for role in roles:
                conn.execute(self.user_roles.insert().values(user_id=user_id, role=role))
            self._audit(conn, actor, user_id, "user:create", {
                "username": [None, username], "display_name": [None, display_name or username],
                "email": [None, email], "roles": [None, sorted(roles)], "active": [None, True]},
                now)
        return int(user_id)

    # ----------------------------------------------------------------- reading

    def get(self, user_id: int) -> dict:
        """Return one account (never its password hash) with its roles; NotFound if none."""
        found = self.find(user_ids=[user_id])
        if not found:
            raise NotFound(f"user {user_id} was not found")
        return found[0]

    def find(self, q: str = "", *, user_ids: list[int] | None = None, limit: int = 100,
             after: str | None = None) -> list[dict]:
        """Return accounts ordered by username, with their roles, in two queries.

        `q` matches a part of the username, display name or email (any case); `after` is the
        last username of the previous page.
        """
        u = self.users
        query = sa.select(u.c.id, u.c.username, u.c.display_name, u.c.email, u.c.locale,
                          u.c.active, u.c.created_at, u.c.last_login_at)
        if user_ids is not None:
            query = query.where(u.c.id.in_(user_ids))
        q = q.strip().lower()
        if q:
            escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped}%"
            query = query.where(sa.or_(*(sa.func.lower(c).like(pattern, escape="\\")
                                         for c in (u.c.username, u.c.display_name, u.c.email))))
        if after:
            query = query.where(u.c.username > after)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                query.order_by(u.c.username).limit(limit))]
            roles: dict[int, list[str]] = {}
            if rows:
                for user_id, role in conn.execute(
                        sa.select(self.user_roles.c.user_id, self.user_roles.c.role).where(
                            self.user_roles.c.user_id.in_([r["id"] for r in rows]))
                        .order_by(self.user_roles.c.role)):
                    roles.setdefault(user_id, []).append(role)
        for row in rows:
            row["roles"] = roles.get(row["id"], [])
        return rows

    # ----------------------------------------------------------------- changes

    def update(self, user_id: int, *, display_name: str | None = None,
               email: str | None = None, actor: Caller | None = None) -> dict:
        """Change a user's display name and email (an empty email clears it)."""
        return self.edit(user_id, display_name=display_name, email=email, actor=actor)

    def set_roles(self, user_id: int, roles: list[str], *, actor: Caller | None = None) -> dict:
        """Replace a user's roles; refuse unknown roles and leaving the site without admin."""
        return self.edit(user_id, roles=roles, actor=actor)

    def edit(self, user_id: int, *, display_name: str | None = None, email: str | None = None,
             roles: list[str] | None = None, actor: Caller | None = None) -> dict:
        """Change the profile (when `display_name` is given) and the roles (when `roles` is),
        all or nothing, in one transaction; return the changes ({} when nothing changed).

        An admin may not remove their own admin role, and the last active admin keeps theirs.
        """
        problems: dict[str, list] = {}
        profile = display_name is not None
        if profile:
            display_name, email = display_name.strip(), (email or "").strip() or None
            problems.update(self._profile_problems(display_name, email))
            if not display_name:
                problems["display_name"] = [("required", {})]
        if roles is not None:
            unknown = [r for r in roles if r not in self.registry.roles]
            if unknown:
                problems["roles"] = [("unknown_role", {"role": r}) for r in unknown]
        if problems:
            raise _refuse(ValidationFailed, problems)
        changed: dict = {}
        with write_transaction(self.engine) as conn:
            row = self._row(conn, user_id)
            if roles is not None:
                old, new = self._roles(conn, user_id), sorted(set(roles))
                if old != new:
                    if ADMIN in old and ADMIN not in new:
                        if actor is not None and actor.user_id == user_id:
                            raise _refuse(Conflict, {"roles": [("own_admin", {})]})
                        if row["active"] and not self._other_admins(conn, user_id):
                            raise _refuse(Conflict, {"roles": [("last_admin", {})]})
                    conn.execute(self.user_roles.delete().where(
                        self.user_roles.c.user_id == user_id))
                    for role in new:
                        conn.execute(self.user_roles.insert().values(user_id=user_id, role=role))
                    self._audit(conn, actor, user_id, "user:roles", {"roles": [old, new]})
                    changed["roles"] = [old, new]
            if profile:
                changes = {name: [row[name], value] for name, value in
                           (("display_name", display_name), ("email", email))
                           if row[name] != value}
                if changes:
                    conn.execute(self.users.update().where(self.users.c.id == user_id)
                                 .values({name: new for name, (_old, new) in changes.items()}))
                    self._audit(conn, actor, user_id, "user:update", changes)
                    changed.update(changes)
        return changed

    def set_active(self, user_id: int, active: bool, *, actor: Caller | None = None) -> dict:
        """Enable or disable a user; disabling ends their sessions and API tokens.

        Refused for one's own account and for the last active admin.
        """
        with write_transaction(self.engine) as conn:
            row = self._row(conn, user_id)
            if bool(row["active"]) == active:
                return {}
            now = dt.datetime.now(UTC)
            if not active:
                if actor is not None and actor.user_id == user_id:
                    raise _refuse(Conflict, {"active": [("disable_self", {})]})
                if ADMIN in self._roles(conn, user_id) and not self._other_admins(conn, user_id):
                    raise _refuse(Conflict, {"active": [("last_admin", {})]})
                self._revoke(conn, user_id, now)
            conn.execute(self.users.update().where(self.users.c.id == user_id)
                         .values(active=active))
            changes = {"active": [not active, active]}
            self._audit(conn, actor, user_id, "user:enable" if active else "user:disable",
                        changes, now)
        return changes

    def set_password(self, user_id: int, password: str, *, actor: Caller | None = None,
                     enforce_policy: bool = True, keep_token_hash: str | None = None) -> None:
        """Give a user a new password and end their other sessions and API tokens.

        `keep_token_hash` spares one token (an admin resetting their own password stays
        signed in). The audit entry says that the password changed, never what to.
        """
        with self.engine.connect() as conn:
            username = self._row(conn, user_id)["username"]
        found = password_problems(password, username) if enforce_policy else \
            ([] if password else [("required", {})])
        if found:
            raise _refuse(ValidationFailed, {"password": found})
        hashed = hash_password(password)
        now = dt.datetime.now(UTC)
        with write_transaction(self.engine) as conn:
            self._row(conn, user_id)
            conn.execute(self.users.update().where(self.users.c.id == user_id)
                         .values(password_hash=hashed))
            self._revoke(conn, user_id, now, keep=keep_token_hash)
            self._audit(conn, actor, user_id, "user:password", {}, now)

    def history(self, user_id: int, limit: int = 50) -> list[dict]:
        """Return the audit entries of an account, newest first."""
        a = self.audit
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                sa.select(a.c.id, a.c.action, a.c.user_id, a.c.at, a.c.changes).where(
                    a.c.entity == "user", a.c.record_id == user_id)
                .order_by(a.c.id.desc()).limit(limit))]

    # ----------------------------------------------------------------- helpers

    def _check_roles(self, roles: list[str]) -> None:
        unknown = [r for r in roles if r not in self.registry.roles]
        if unknown:
            raise _refuse(ValidationFailed, {"roles": [("unknown_role", {"role": r})
                                                       for r in unknown]})

    @staticmethod
    def _profile_problems(display_name: str | None, email: str | None) -> dict[str, list]:
        problems: dict[str, list] = {}
        if display_name and len(display_name) > 200:
            problems["display_name"] = [("too_long", {"n": 200})]
        if email and len(email) > 254:
            problems["email"] = [("too_long", {"n": 254})]
        elif email and not _EMAIL.fullmatch(email):
            problems["email"] = [("not_email", {})]
        return problems

    def _row(self, conn, user_id: int):
        row = conn.execute(sa.select(self.users.c.id, self.users.c.username,
                                     self.users.c.display_name, self.users.c.email,
                                     self.users.c.active)
                           .where(self.users.c.id == user_id)).first()
        if row is None:
            raise NotFound(f"user {user_id} was not found")
        return row._mapping

    def _roles(self, conn, user_id: int) -> list[str]:
        return [r for (r,) in conn.execute(sa.select(self.user_roles.c.role).where(
            self.user_roles.c.user_id == user_id).order_by(self.user_roles.c.role))]

    def _other_admins(self, conn, user_id: int) -> int:
        """Count the other active admins, locking their rows (PostgreSQL) so that two
        admins demoting each other at once cannot both succeed."""
        u, r = self.users, self.user_roles
        rows = conn.execute(sa.select(u.c.id).join(r, r.c.user_id == u.c.id).where(
            r.c.role == ADMIN, u.c.active, u.c.id != user_id).with_for_update(of=u)).all()
        return len(rows)

    def _revoke(self, conn, user_id: int, now: dt.datetime, keep: str | None = None) -> None:
        query = self.tokens.update().where(self.tokens.c.user_id == user_id,
                                           self.tokens.c.revoked_at.is_(None))
        if keep:
            query = query.where(self.tokens.c.token_hash != keep)
        conn.execute(query.values(revoked_at=now))

    def _audit(self, conn, actor: Caller | None, user_id: int, action: str, changes: dict,
               at: dt.datetime | None = None) -> None:
        conn.execute(self.audit.insert().values(
            entity="user", record_id=user_id, action=action,
            user_id=actor.user_id if actor is not None else None,
            at=at or dt.datetime.now(UTC), changes=changes))

    def caller(self, user_id: int, locale: str | None = None) -> Caller:
        """Return the Caller for an active user id."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.users).where(self.users.c.id == user_id,
                                                           self.users.c.active)).first()
            if row is None:
                raise NotFound(f"user {user_id} was not found")
            roles = tuple(r for (r,) in conn.execute(
                sa.select(self.user_roles.c.role).where(self.user_roles.c.user_id == user_id)
                .order_by(self.user_roles.c.role)))
        return Caller(user_id=row.id, roles=roles, locale=locale or row.locale or "en",
                      username=row.username, display_name=row.display_name, email=row.email)

    def authenticate(self, username: str, password: str) -> int | None:
        """Return the user id when the password matches an active user, else None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.users.c.id, self.users.c.password_hash).where(
                sa.func.lower(self.users.c.username) == username.strip().lower(),
                self.users.c.active)).first()
        if row is None:
            verify_password(password, dummy_hash())  # the same cost as a real check
            return None
        if not verify_password(password, row.password_hash):
            return None
        with write_transaction(self.engine) as conn:  # the admin console shows it
            conn.execute(self.users.update().where(self.users.c.id == row.id)
                         .values(last_login_at=dt.datetime.now(UTC)))
        return int(row.id)

    def by_username(self, username: str) -> int | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.users.c.id).where(
                sa.func.lower(self.users.c.username) == username.lower())).first()
        return int(row.id) if row else None
