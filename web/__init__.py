"""The web application: the JSON API now; sign-in pages and the generated UI build on it."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from flask import Flask, request

from engine.records.access import Caller
from engine.records.service import RecordService
from engine.records.users import Users
from engine.registry.model import Registry
from web.auth import Tokens


class Site:
    """What every request needs, built once at start-up: registry, services, tokens."""

    def __init__(self, registry: Registry, engine: sa.Engine):
        self.registry = registry
        self.engine = engine
        self.service = RecordService(registry, engine)
        self.users = Users(registry, engine, self.service.schema)
        app = registry.app
        self.tokens = Tokens(engine, self.service.schema, app.token_days if app else 30)
        self.default_locale = app.locale if app else "en"

    def caller(self, user_id: int) -> Caller:
        caller = self.users.caller(user_id)
        stored = self._stored_locale(user_id)
        locale = stored or _accept_language() or self.default_locale
        return Caller(caller.user_id, caller.roles, locale, caller.username,
                      caller.display_name, caller.email)

    def _stored_locale(self, user_id: int) -> str | None:
        table = self.service.schema.engine["user"]
        with self.engine.connect() as conn:
            return conn.execute(sa.select(table.c.locale).where(table.c.id == user_id)).scalar()

    def active_users(self) -> list[dict]:
        table = self.service.schema.engine["user"]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.id, table.c.username, table.c.display_name)
                                .where(table.c.active).order_by(table.c.display_name))
            return [{"id": r.id, "username": r.username, "display_name": r.display_name}
                    for r in rows]


def _accept_language() -> str | None:
    header = request.headers.get("Accept-Language", "")
    if not header:
        return None
    first = header.split(",")[0].strip().lower()
    return "zh" if first.startswith("zh") else ("en" if first.startswith("en") else None)


def create_app(registry: Registry, engine: sa.Engine) -> Flask:
    """Build the Flask application for a compiled registry and a migrated database."""
    from web.api import api, error

    app = Flask(__name__)
    app.extensions["crm"] = Site(registry, engine)
    max_mb = registry.app.max_body_mb if registry.app else 10
    app.config["MAX_CONTENT_LENGTH"] = int(max_mb * 1024 * 1024)
    app.register_blueprint(api)
    from web.ui import html_error, register_ui
    register_ui(app)

    def is_api() -> bool:
        return request.path.startswith("/api/")

    @app.errorhandler(404)
    def not_found(exc):
        if not is_api():
            return html_error(404)
        return error(404, "not_found", "no such resource")

    @app.errorhandler(405)
    def not_allowed(exc):
        if not is_api():
            return html_error(405)
        return error(405, "method_not_allowed", f"{request.method} is not allowed here")

    @app.errorhandler(413)
    def too_large(exc):
        if not is_api():
            return html_error(413)
        return error(413, "payload_too_large", f"the body is larger than {max_mb} MB")

    @app.errorhandler(500)
    def internal(exc):
        if not is_api():
            return html_error(500)
        return error(500, "internal", "something went wrong on the server")

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", "default-src 'self'")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    return app
