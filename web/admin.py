"""The admin console (`/admin`), for the `admin` role only: user accounts for now.

Anyone else gets 403 on every URL before anything is read or written; a visitor who is not
signed in is sent to the sign-in page. The rules (password policy, roles, the last admin, the
audit entry) live in engine/records/users.py; this module turns forms into calls and refusals
into messages next to their fields, in the admin's language. Every POST carries the session's
CSRF token (web/session.py checks it before this module runs).
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Flask, flash, g, redirect, request, session, url_for

from engine.errors import RecordError
from engine.records.users import generate_password, password_problems
from web.auth import _hash
from web.common import site
from web.i18n import t
from web.ui import html_error, page, record_error, require_sign_in

admin = Blueprint("admin", __name__, url_prefix="/admin")
admin.register_error_handler(RecordError, record_error)
PAGE_SIZE = 100


def register_admin(app: Flask) -> None:
    app.register_blueprint(admin)
    from web.admin_console import register_console
    register_console(app)


@admin.before_request
def require_admin():
    refused = require_sign_in()
    if refused is not None:
        return refused
    if not g.caller.is_admin:
        return html_error(403)
    return None


@admin.after_request
def no_store(response):
    # pages may show a generated password, and always show accounts: never cache them
    response.headers["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------- helpers

def _problems(exc: RecordError, locale: str) -> dict[str, list[str]]:
    """A refusal of engine/records/users.py as {field: [messages in the admin's language]}."""
    problems = exc.extra.get("problems")
    if not problems:
        return {name: list(texts) for name, texts in exc.fields.items()} or \
            {"__all__": [exc.message]}
    return {name: [t(f"user_{key}", locale, **params) for key, params in items]
            for name, items in problems.items()}


def _role_choices(locale: str) -> list[dict]:
    roles = site().registry.roles
    return sorted(({"name": name, "label": role.label.get(locale)}
                   for name, role in roles.items()),
                  key=lambda r: (r["name"] != "admin", r["label"].lower()))


def _role_label(name: str, locale: str) -> str:
    role = site().registry.roles.get(name)
    return role.label.get(locale) if role is not None else name


def _when(value) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _shown(user: dict, locale: str) -> dict:
    return {**user, "role_labels": [_role_label(r, locale) for r in user["roles"]],
            "last_login": _when(user["last_login_at"]), "created": _when(user["created_at"])}


def _new_password(form, username: str, locale: str) -> tuple[str | None, bool, dict]:
    """The password a form asks for: (password, generated, errors by field)."""
    if form.get("generate"):
        return generate_password(), True, {}
    password = form.get("password", "")
    found = password_problems(password, username)
    if found:
        return None, False, {"password": [t(f"user_{key}", locale, **params)
                                          for key, params in found]}
    if password != form.get("password2", ""):
        return None, False, {"password2": [t("user_password_mismatch", locale)]}
    return password, False, {}


def _password_page(user: dict, password: str, created: bool):
    """Show a generated password once: it is in this response only, never stored or sent."""
    return page("admin_password.html", account=user, password=password, created=created,
                title=t("admin_password_title", g.caller.locale))


# ---------------------------------------------------------------- list

@admin.get("")
@admin.get("/")
def index():
    return redirect(url_for("admin.users"))


@admin.get("/users")
def users():
    loc = g.caller.locale
    q = request.args.get("q", "").strip()
    after = request.args.get("after", "").strip() or None
    found = site().users.find(q, limit=PAGE_SIZE + 1, after=after)
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    next_url = url_for("admin.users", q=q or None, after=found[-1]["username"]) \
        if more else None
    first_url = url_for("admin.users", q=q or None) if after else None
    return page("admin_users.html", title=t("admin_users", loc), q=q,
                users=[_shown(u, loc) for u in found], next_url=next_url, first_url=first_url)


# ---------------------------------------------------------------- create

@admin.route("/users/new", methods=["GET", "POST"])
def new_user():
    loc = g.caller.locale
    values = {"username": "", "display_name": "", "email": "", "roles": [], "generate": False}
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        form = request.form
        values = {"username": form.get("username", "").strip(),
                  "display_name": form.get("display_name", "").strip(),
                  "email": form.get("email", "").strip(),
                  "roles": form.getlist("roles"), "generate": bool(form.get("generate"))}
        password, generated, errors = _new_password(form, values["username"], loc)
        if not errors:
            try:
                user_id = site().users.create(
                    values["username"], password, values["roles"],
                    display_name=values["display_name"] or None, email=values["email"] or None,
                    actor=g.caller, enforce_policy=True)
            except RecordError as exc:
                if exc.status == 404:
                    raise
                errors, status = _problems(exc, loc), exc.status
            else:
                user = site().users.get(user_id)
                if generated:
                    return _password_page(user, password, created=True)
                flash(t("admin_user_created", loc, name=user["username"]), "success")
                return redirect(url_for("admin.user", user_id=user_id))
        else:
            status = 422
    return page("admin_user_new.html", status, title=t("admin_new_user", loc), values=values,
                errors=errors, roles=_role_choices(loc),
                top_errors=[t("fix_errors", loc)] if errors else [])


# ---------------------------------------------------------------- one user

def _user_page(user_id: int, status: int = 200, values: dict | None = None,
               errors: dict | None = None, password_errors: dict | None = None,
               active_errors: list | None = None):
    loc = g.caller.locale
    user = _shown(site().users.get(user_id), loc)
    entries = site().users.history(user_id)
    actors = list({e["user_id"] for e in entries if e["user_id"] is not None})
    names = {u["id"]: u["display_name"] or u["username"]
             for u in site().users.find(user_ids=actors)} if actors else {}
    history = [{"at": _when(e["at"]), "who": names.get(e["user_id"], "-"),
                "action": t(f"user_action_{e['action'].partition(':')[2]}", loc),
                "changes": [{"label": t(f"user_field_{name}", loc),
                             "old": _change_text(name, change[0], loc),
                             "new": _change_text(name, change[1], loc)}
                            for name, change in (e["changes"] or {}).items()
                            if isinstance(change, list) and len(change) == 2]}
               for e in entries]
    errors = errors or {}
    top = [m for key in ("__all__",) for m in errors.get(key, [])]
    if errors or password_errors or active_errors:
        top = top or [t("fix_errors", loc)]
    return page("admin_user.html", status, title=user["display_name"] or user["username"],
                account=user, values=values or user, errors=errors,
                password_errors=password_errors or {}, active_errors=active_errors or [],
                roles=_role_choices(loc), history=history, top_errors=top,
                is_self=user["id"] == g.caller.user_id)


def _change_text(name: str, value, locale: str) -> str:
    if value is None:
        return ""
    if name == "roles":
        return ", ".join(_role_label(r, locale) for r in value)
    if name == "active":
        return t("admin_active" if value else "admin_disabled", locale)
    return str(value)


@admin.get("/users/<int:user_id>")
def user(user_id):
    return _user_page(user_id)


@admin.post("/users/<int:user_id>")
def edit_user(user_id):
    loc = g.caller.locale
    form = request.form
    values = {**site().users.get(user_id), "display_name": form.get("display_name", "").strip(),
              "email": form.get("email", "").strip(), "roles": form.getlist("roles")}
    try:
        changed = site().users.edit(user_id, display_name=values["display_name"],
                                    email=values["email"], roles=values["roles"],
                                    actor=g.caller)
    except RecordError as exc:
        if exc.status == 404:
            raise
        return _user_page(user_id, exc.status, values=values, errors=_problems(exc, loc))
    flash(t("saved" if changed else "admin_nothing_changed", loc), "success")
    return redirect(url_for("admin.user", user_id=user_id))


@admin.post("/users/<int:user_id>/active")
def set_active(user_id):
    loc = g.caller.locale
    active = request.form.get("active") == "1"
    try:
        changed = site().users.set_active(user_id, active, actor=g.caller)
    except RecordError as exc:
        if exc.status == 404:
            raise
        messages = [m for texts in _problems(exc, loc).values() for m in texts]
        return _user_page(user_id, exc.status, active_errors=messages)
    if changed:
        flash(t("admin_enabled" if active else "admin_disabled_done", loc), "success")
    return redirect(url_for("admin.user", user_id=user_id))


@admin.post("/users/<int:user_id>/password")
def reset_password(user_id):
    loc = g.caller.locale
    target = site().users.get(user_id)
    password, generated, errors = _new_password(request.form, target["username"], loc)
    if not errors:
        own = user_id == g.caller.user_id and session.get("token")
        try:
            site().users.set_password(user_id, password, actor=g.caller,
                                      keep_token_hash=_hash(own) if own else None)
        except RecordError as exc:
            if exc.status == 404:
                raise
            errors = _problems(exc, loc)
    if errors:
        return _user_page(user_id, 422, password_errors=errors)
    if generated:
        return _password_page(target, password, created=False)
    flash(t("admin_password_changed", loc, name=target["username"]), "success")
    return redirect(url_for("admin.user", user_id=user_id))
