"""The pages of `crm serve --dev` that stand in for the app: configuration problems, a pending
migration with its apply button, and the status the pages poll to reload themselves.

Every request is answered from the `DevState` the dispatcher chose for it
(`environ["crm.dev.state"]`), so a page and the state it describes always agree. The JSON API
gets 503 with the same facts as data; a UI page gets them as HTML, in the reader's language.
"""

from __future__ import annotations

import hmac
import re
import secrets
from functools import lru_cache
from pathlib import Path

from flask import (Flask, jsonify, make_response, redirect, render_template, request,
                   session)

from web.i18n import normalize, t

WEB = Path(__file__).resolve().parent
ERRORS_DOC = WEB.parent / "docs" / "errors.md"
CSRF_COOKIE = "crm_dev_csrf"
_DID_YOU_MEAN = re.compile(r"^(?P<message>.*?)\s*\((?P<hint>did you mean '[^']*'\?)\)$", re.S)


def create_pages(server) -> Flask:
    """Build the small Flask app that answers while the site's app cannot."""
    pages = Flask(__name__, template_folder=str(WEB / "templates"),
                  static_folder=str(WEB / "static"), static_url_path="/_dev/static")
    pages.secret_key = server.secret
    # the app's own cookie, read only: the dev pages speak the language chosen in the app
    pages.config.update(SESSION_COOKIE_NAME="crm_session")
    pages.jinja_env.globals["t"] = t

    @pages.get("/_dev/status")
    def status():
        state = _state()
        return jsonify(generation=state.generation, status=state.status,
                       problems=len(state.problems))

    @pages.get("/_dev/")
    def overview():
        return _page(_state())

    @pages.post("/_dev/migrate")
    def apply_migration():
        from web.devserver import StalePlan
        state = _state()
        locale = _locale(state)
        sent = request.form.get("csrf_token", "")
        expected = request.cookies.get(CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(sent, expected) or not _same_origin():
            return _page(state, status=400, notice=t("bad_csrf", locale))
        try:
            server.apply_migration(int(request.form.get("generation", "")))
        except (StalePlan, ValueError):
            return _page(server.state, status=409, notice=t("dev_stale_plan", locale))
        return redirect(_safe_next(request.form.get("next")), 303)

    @pages.route("/", defaults={"path": ""}, methods=["GET", "HEAD", "POST", "PUT", "PATCH",
                                                      "DELETE"])
    @pages.route("/<path:path>", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
    def stand_in(path: str):
        state = _state()
        if state.app is not None or path.startswith("_dev/"):  # an unknown /_dev/ address
            return jsonify(error={"code": "not_found", "message": "no such resource"}), 404
        if path.startswith("api/"):
            return _api_answer(state)
        return _page(state, status=503)

    @pages.after_request
    def headers(response):
        response.headers["Cache-Control"] = "no-store"  # never show a stale problem list
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", "default-src 'self'")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    return pages


def _state():
    return request.environ["crm.dev.state"]


def _page(state, status: int = 200, notice: str | None = None):
    locale = _locale(state)
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    # where the page goes back to once the server reloads: never the POST address itself
    here = request.form.get("next", "/") if request.endpoint == "apply_migration" else \
        request.full_path.rstrip("?")
    response = render_template(
        "dev.html", state=state, locale=locale, notice=notice, csrf=token, next=_safe_next(here),
        problems=[problem_view(p) for p in state.problems], steps=_steps(state),
        time=state.loaded_at.strftime("%H:%M:%S"),
        last_good_time=state.last_good_at.strftime("%H:%M:%S") if state.last_good_at else None,
        lang_links=_lang_links())
    response = make_response(response, status)
    if state.status == "migration" and not state.plan.refused:  # the page has the button
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/")
    return response


def _api_answer(state):
    if state.problems:
        body = {"code": "configuration_invalid",
                "message": f"the configuration has {len(state.problems)} problem"
                           f"{'s' if len(state.problems) != 1 else ''}; fix the files",
                "problems": [problem_view(p) for p in state.problems]}
    elif state.plan is not None:
        body = {"code": "migration_pending",
                "message": f"the database needs {len(state.plan.changes)} changes; apply them "
                           "on /_dev/ or with crm migrate",
                "steps": _steps(state)}
    else:
        body = {"code": "reload_failed", "message": state.failure or "not loaded"}
    response = jsonify(error=body)
    response.status_code = 503
    response.headers["Retry-After"] = "2"
    return response


def problem_view(problem) -> dict:
    """A problem as the page and the API show it: where, what, and how to fix it."""
    message, hint = problem.message, None
    match = _DID_YOU_MEAN.match(message)
    if match:
        message, hint = match.group("message"), match.group("hint")
    return {"file": problem.path, "line": problem.line, "column": problem.column,
            "code": problem.code, "message": message,
            "hint": hint or typical_fixes().get(problem.code)}


@lru_cache(maxsize=1)
def typical_fixes() -> dict[str, str]:
    """The "typical fix" column of docs/errors.md, by code (empty when the docs are absent)."""
    try:
        text = ERRORS_DOC.read_text(encoding="utf-8")
    except OSError:  # an installed engine without its docs: messages still carry their hints
        return {}
    fixes = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[2] not in ("", "typical fix"):
            for code in re.findall(r"`([a-z]+(?:-[a-z]+)+)`", cells[0]):
                fixes[code] = cells[2].replace("`", "")
    return fixes


def _steps(state) -> list[dict]:
    if state.plan is None:
        return []
    return [{"description": s.description, "refused": s.refused, "rows": s.rows}
            for s in state.plan.steps]


def _locale(state) -> str:
    """?lang=, else the language chosen in the app (its session cookie), else the browser's."""
    for candidate in (request.args.get("lang"), _session_locale(),
                      request.headers.get("Accept-Language", "").split(",")[0]):
        chosen = normalize(candidate)
        if chosen:
            return chosen
    registry = state.registry
    return normalize(registry.app.locale if registry is not None and registry.app else None) \
        or "en"


def _session_locale() -> str | None:
    if request.path.startswith("/api/"):
        return None
    try:
        return session.get("locale")
    except Exception:  # noqa: BLE001 - a cookie signed by another key is simply not ours
        return None


def _lang_links() -> dict[str, str]:
    return {code: f"{request.path}?lang={code}" for code in ("en", "zh")}


def _same_origin() -> bool:
    """A browser names the page a POST came from; it must be this server."""
    origin = request.headers.get("Origin")
    return origin is None or origin == request.host_url.rstrip("/")


def _safe_next(target: str | None) -> str:
    from web.redirects import local_path
    return local_path(target) or "/"
