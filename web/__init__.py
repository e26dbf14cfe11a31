"""The web application: the JSON API now; sign-in pages and the generated UI build on it."""

from __future__ import annotations


from functools import cached_property

import sqlalchemy as sa
from flask import Flask, request

from engine.errors import NotFound
from engine.records.access import Caller
from engine.records.service import RecordService
from engine.records.users import Users
from engine.registry.model import Registry
from engine.storage.driver import DriverStatement
from web.auth import Tokens
from web.i18n import normalize


class Site:
    """What every request needs, built once at start-up: registry, services, tokens."""

    def __init__(self, registry: Registry, engine: sa.Engine,
                 service: RecordService | None = None):
        self.registry = registry
        self.engine = engine
        self.service = service or RecordService(registry, engine)
        self.users = Users(registry, engine, self.service.schema)
        app = registry.app
        self.tokens = Tokens(engine, self.service.schema, app.token_days if app else 30)
        self.default_locale = app.locale if app else "en"
        self._user_table = users = self.service.schema.engine["user"]
        tokens, roles = self.tokens.tokens, self.service.schema.engine["user_role"]
        # read on every request: compiled once (engine/storage/driver.py)
        dialect = engine.dialect
        self._user_by_id = DriverStatement(sa.select(users).where(
            users.c.id == sa.bindparam("user_id"), users.c.active), dialect)
        self._user_by_token = DriverStatement(
            sa.select(users).join(tokens, tokens.c.user_id == users.c.id).where(
                tokens.c.token_hash == sa.bindparam("token_hash"), tokens.c.revoked_at.is_(None),
                tokens.c.expires_at > sa.bindparam("now"), users.c.active,
                # a browser session's token never opens the API (it travels in a cookie)
                sa.or_(tokens.c.kind.is_(None), tokens.c.kind == sa.bindparam("api_kind"))),
            dialect)
        self._roles_of = DriverStatement(sa.select(roles.c.role).where(
            roles.c.user_id == sa.bindparam("user_id")).order_by(roles.c.role), dialect)

    @cached_property
    def documents(self):
        """The printable documents' renderer, built on first use (engine/documents)."""
        from engine.documents.render import Documents
        return Documents(self.registry, self.service)

    def caller(self, user_id: int) -> Caller:
        """The acting user; messages in their setting, else Accept-Language, else the site's."""
        return self._caller(self._user_by_id, {"user_id": user_id})

    def caller_for_token(self, token: str) -> Caller | None:
        """The user a valid API token belongs to, read together with the token."""
        from web.auth import API, _hash
        try:
            return self._caller(self._user_by_token, {"token_hash": _hash(token),
                                                      "now": _utcnow(), "api_kind": API})
        except NotFound:
            return None

    def _caller(self, user_query: DriverStatement, params: dict) -> Caller:
        with self.engine.connect() as conn:
            row = user_query.first(conn, params)
            if row is None:
                raise NotFound("no such active user")
            roles = tuple(r["role"] for r in self._roles_of.all(conn, {"user_id": row["id"]}))
        locale = row["locale"] or _accept_language() or self.default_locale
        return Caller(row["id"], roles, locale, row["username"], row["display_name"],
                      row["email"])

    def active_users(self) -> list[dict]:
        table = self.service.schema.engine["user"]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.id, table.c.username, table.c.display_name)
                                .where(table.c.active).order_by(table.c.display_name))
            return [{"id": r.id, "username": r.username, "display_name": r.display_name}
                    for r in rows]


def _utcnow():
    import datetime as dt
    return dt.datetime.now(dt.timezone.utc)


def _accept_language() -> str | None:
    return normalize(request.headers.get("Accept-Language", "").split(",")[0])


def create_app(registry: Registry, engine: sa.Engine, runtime=None) -> Flask:
    """Build the Flask application for a compiled registry and a migrated database.

    The app follows the configuration the fleet applied (engine/runtime/context.py): before a
    request it checks the applied version (at most once a second) and, when another process
    applied a newer one, serves it from then on. Background work goes wherever `runtime`'s
    queue sends it (none set: it waits in the database for a worker's sweep)."""
    from engine.runtime.context import Runtime
    from web.api import api, authenticate, error
    from web.session import require_secret_in_production

    require_secret_in_production()
    app = Flask(__name__)
    runtime = runtime or Runtime(registry, engine)
    app.extensions["crm_runtime"] = runtime
    app.extensions["crm"] = Site(runtime.registry, engine, runtime.service)
    runtime.on_swap(lambda serving: serve(app, serving))
    from web.health import register_health
    register_health(app)  # first: its request hooks time and log every request
    max_mb = registry.app.max_body_mb if registry.app else 10
    app.config["MAX_CONTENT_LENGTH"] = int(max_mb * 1024 * 1024)
    app.register_blueprint(api)
    @app.before_request
    def follow_the_fleet():  # a newer applied configuration is served from this request on
        runtime.refresh()
    app.before_request(authenticate)
    from web.inbound import register_inbound
    register_inbound(app)
    from web.ui import html_error, register_ui
    register_ui(app)
    from web.dashboards import register_dashboards
    register_dashboards(app)
    from web.admin import register_admin
    register_admin(app)
    from web.dictionary import register_dictionary
    register_dictionary(app)
    from web.import_wizard import register_import_wizard
    register_import_wizard(app)
    from web.exchange_rates import register_exchange_rates
    register_exchange_rates(app)

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


def serve(app: Flask, serving) -> None:
    """Serve a new configuration from now on (engine/runtime Serving): build its Site, then
    swap it in whole.

    A request running at that moment looks the Site up again on each use, so it may finish
    with the new one; both work on the migrated tables (a migration keeps every column the old
    configuration used)."""
    from engine.records.inbound import Inbound
    new = Site(serving.registry, serving.service.engine, serving.service)
    app.extensions["crm"] = new
    # the other extensions built on the old service (web/inbound.py, web/import_wizard.py)
    if "crm_inbound" in app.extensions:
        app.extensions["crm_inbound"] = Inbound(new.service)
    if "crm_imports" in app.extensions:
        from engine.records.importjobs import ImportJobs
        app.extensions["crm_imports"] = ImportJobs(new.service)
