"""Browser sessions for the UI: sign-in form, sign-out, language switch and CSRF tokens.

A browser session is an API token (web.auth.Tokens) kept in Flask's signed session cookie, so
the session lives on the server: signing out revokes the token, and a copied old cookie stops
working. Every sign-in issues a new token (a fresh session id). Every UI POST carries the
session's CSRF token.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from flask import (Blueprint, Flask, current_app, redirect, render_template, request,
                   session, url_for)
from flask.sessions import SecureCookieSessionInterface

from web.i18n import normalize, t

bp = Blueprint("session", __name__)
CSRF_FIELD = "csrf_token"
SECRET_ENV = "CRM_SECRET_KEY"
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def site():
    from web.common import site  # one Site per request (see there)
    return site()


# ---------------------------------------------------------------- secret key and cookie

ENV_NAME = "CRM_ENV"
SETTING = "secret_key"


def production() -> bool:
    """True where $CRM_ENV says this is production."""
    return os.environ.get(ENV_NAME, "").strip().lower() in ("production", "prod")


def require_secret_in_production() -> None:
    """In production every app server must sign cookies with the one key the operator set:
    refuse to start without it, saying so."""
    if production() and not os.environ.get(SECRET_ENV):
        raise RuntimeError(
            f"{ENV_NAME}=production needs {SECRET_ENV}: set it to one long random value, the "
            f"same on every app server (for example: python -c \"import secrets; "
            f"print(secrets.token_urlsafe(48))\"), so that all of them accept each other's "
            "session cookies")


def secret_key(folder: str | None, engine=None, schema=None) -> str:
    """CRM_SECRET_KEY, else the site's key in the database (made once, shared by every
    process and machine of the site), else the one kept in <site>/.crm/secret_key, else
    random. A key first kept in the folder moves into the database, keeping its sessions."""
    key = os.environ.get(SECRET_ENV)
    if key:
        return key
    require_secret_in_production()
    shared = engine is not None and schema is not None
    kept = _folder_key(folder, make=not shared)
    if shared:
        from engine.storage.runtimetables import shared_setting
        try:
            return shared_setting(engine, schema.engine["setting"], SETTING,
                                  kept or secrets.token_urlsafe(48))
        except Exception:  # noqa: BLE001 - a database without the table (not migrated yet)
            pass
    return kept or secrets.token_urlsafe(48)


def _folder_key(folder: str | None, make: bool) -> str | None:
    """The key kept in a site folder; made there once (`make`) when the folder is writable."""
    if not folder or not Path(folder).is_dir():
        return None
    path = Path(folder) / ".crm" / "secret_key"
    try:
        if path.is_file():
            stored = path.read_text(encoding="utf-8").strip()
            if stored:
                return stored
        if not make:
            return None
        path.parent.mkdir(exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(key + "\n")
        return key
    except OSError:
        return None


class UISessionInterface(SecureCookieSessionInterface):
    """The signed cookie session, for UI paths only; the secret key is found on first use.

    JSON API calls (/api/) never read or write the cookie: they authenticate by bearer token.
    """

    def open_session(self, app, request):
        if request.path.startswith("/api/"):
            return self.session_class()
        return super().open_session(app, request)

    def get_signing_serializer(self, app):
        if not app.secret_key:
            crm = app.extensions["crm"]
            registry = crm.registry
            app.secret_key = secret_key(registry.app.folder if registry.app else None,
                                        crm.engine, crm.service.schema)
        return super().get_signing_serializer(app)

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def setup(app: Flask) -> None:
    """Install the session cookie settings, the CSRF check and the sign-in routes."""
    app.session_interface = UISessionInterface()
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_NAME="crm_session")
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["CSRF_FIELD"] = CSRF_FIELD
    app.register_blueprint(bp)


# ---------------------------------------------------------------- CSRF

def csrf_token() -> str:
    token = session.get(CSRF_FIELD)
    if not token:
        token = session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


@bp.before_app_request
def check_csrf():
    if request.method not in UNSAFE_METHODS or request.path.startswith("/api/"):
        return None
    expected = session.get(CSRF_FIELD)
    sent = request.form.get(CSRF_FIELD, "")
    if not expected or not sent or not hmac.compare_digest(str(expected), str(sent)):
        from web.ui import html_error
        return html_error(400, t("bad_csrf", ui_locale()))
    return None


# ---------------------------------------------------------------- who and which language

def session_user_id() -> int | None:
    """The signed-in user's id, or None when the session has no live token."""
    from web.auth import SESSION
    token = session.get("token")
    if not token:
        return None
    return site().tokens.user_for(token, (SESSION,))  # an API token is no browser session


def ui_locale(caller=None) -> str:
    """The session's language, else the caller's (user setting, Accept-Language, site)."""
    chosen = normalize(session.get("locale"))
    if chosen:
        return chosen
    if caller is not None:
        return normalize(caller.locale) or "en"
    header = request.headers.get("Accept-Language", "")
    return normalize(header.split(",")[0]) or normalize(site().default_locale) or "en"


def _safe_next(target: str | None) -> str:
    from web.redirects import local_path
    return local_path(target) or url_for("ui.home")


# ---------------------------------------------------------------- routes

@bp.route("/login", methods=["GET", "POST"])
def login():
    locale = ui_locale()
    if request.method == "GET":
        if session_user_id() is not None:
            return redirect(_safe_next(request.args.get("next")))
        return render_template("login.html", locale=locale, error=None, username="",
                               next=request.args.get("next", ""))
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    next_url = request.form.get("next", "")
    from web.auth import sign_in_limits
    limits = sign_in_limits(username, request.remote_addr)
    wait = site().tokens.retry_after(limits)
    if wait:
        response = current_app.make_response((render_template(
            "login.html", locale=locale, error=t("rate_limited", locale, n=wait),
            username=username, next=next_url), 429))
        response.headers["Retry-After"] = str(wait)
        return response
    user_id = site().users.authenticate(username, password) if username and password else None
    if user_id is None:
        site().tokens.failed(limits)
        return render_template("login.html", locale=locale, error=t("wrong_login", locale),
                               username=username, next=next_url)
    old = session.get("token")
    if old:
        site().tokens.revoke(old)
    chosen = session.get("locale")
    session.clear()  # a fresh session: new token, new CSRF token
    from web.auth import SESSION
    session["token"] = site().tokens.issue(user_id, SESSION)
    session[CSRF_FIELD] = secrets.token_urlsafe(32)
    if chosen:
        session["locale"] = chosen
    return redirect(_safe_next(next_url))


@bp.post("/logout")
def logout():
    token = session.get("token")
    if token:
        site().tokens.revoke(token)
    chosen = session.get("locale")
    session.clear()
    if chosen:
        session["locale"] = chosen
    return redirect(url_for("session.login"))


@bp.post("/locale")
def set_locale():
    chosen = request.form.get("locale", "")
    if chosen in ("en", "zh"):
        session["locale"] = chosen
    return redirect(_safe_next(request.form.get("next")))


def current_caller():
    """g.caller for the signed-in user, in the session's language (None when signed out)."""
    from dataclasses import replace
    from engine.errors import NotFound

    user_id = session_user_id()
    if user_id is None:
        return None
    try:
        caller = site().caller(user_id)
    except NotFound:
        return None
    return replace(caller, locale=ui_locale(caller))
