"""The admin console's site page: pack and version, the pending migration, applying it.

The plan is the one `crm migrate --plan` prints, for the configuration as it is now in the
site folder (read again on every visit, so an edited YAML shows its plan), against the live
database. Applying it is `crm migrate` — the same `engine.storage.migrate.migrate`, one
transaction under the migration lock — after the admin confirms the very plan they read (a
fingerprint of its lines travels with the form) and, when steps were refused, ticks "allow
data loss" like `--allow-data-loss`. The audit entry is written inside that transaction.

After a migration this process serves the new configuration: a new `Site` (registry, record
service, compiled statements) replaces the old one whole, and the connection pool is emptied
because PostgreSQL connections keep prepared statements that describe the old tables.
"""

from __future__ import annotations

import hashlib

from flask import Blueprint, Flask, current_app, flash, g, redirect, request, url_for

import engine
from engine.config.layers import CONTENT_ROOT
from engine.version import engine_version
from engine.storage.migrate import MigrationRefused, Plan, migrate, plan_migration
from web.admin import no_store, require_admin
from web.admin_console import views
from web.common import site
from web.i18n import t
from web.ui import page

site_pages = Blueprint("admin_site", __name__, url_prefix="/admin")
site_pages.before_request(require_admin)
site_pages.after_request(no_store)
# tests and embedded uses load their configuration from another content root
ROOT_SETTING = "CRM_CONTENT_ROOT"


def _configuration():
    """Return (registry, problems): the site folder's configuration as it is now on disk.

    An app built without a site folder has only its running registry to offer.
    """
    running = site().registry
    folder = running.app.folder if running.app else None
    if not folder:
        return running, []
    try:
        return engine.load_registry(site=folder, root=current_app.config.get(
            ROOT_SETTING, CONTENT_ROOT)), []
    except engine.ConfigError as exc:
        return None, [str(problem) for problem in exc.problems]


def _plan(registry) -> Plan:
    with site().engine.connect() as conn:
        return plan_migration(conn, registry)


def fingerprint(plan: Plan) -> str:
    """Identify a plan by what the admin reads of it (its lines, with row counts)."""
    return hashlib.sha256("\n".join(plan.lines()).encode()).hexdigest()[:32]


def _site_page(status: int = 200, errors: dict | None = None, notice: str | None = None):
    loc = g.caller.locale
    running = site().registry
    registry, problems = _configuration()
    plan = _plan(registry) if registry is not None else None
    url = site().engine.url
    return page(
        "admin_site.html", status, title=t("console_site", loc), app=running.app,
        app_label=running.app.label.get(loc) if running.app else "-",
        packs=[{"name": p.name, "label": p.label.get(loc), "version": p.version}
               for p in running.packs],
        engine_version=engine_version(), summary=running.summary(),
        database=url.render_as_string(hide_password=True), dialect=url.get_backend_name(),
        applied=views().applied_configurations(), problems=problems, plan=plan,
        steps=[{"text": s.description, "refused": s.refused, "rows": s.rows,
                "change": s.apply is not None or s.refused} for s in plan.steps]
        if plan else [],
        fingerprint=fingerprint(plan) if plan else "", errors=errors or {},
        top_errors=[notice] if notice else [])


@site_pages.get("/site")
def site_view():
    return _site_page()


@site_pages.post("/site/migrate")
def apply_migration():
    loc = g.caller.locale
    registry, problems = _configuration()
    if registry is None:
        return _site_page(422, notice=t("console_config_problems", loc))
    plan = _plan(registry)
    if request.form.get("plan") != fingerprint(plan):
        return _site_page(409, notice=t("console_plan_changed", loc))
    errors: dict[str, list[str]] = {}
    if request.form.get("confirm") != "1":
        errors["confirm"] = [t("console_confirm_needed", loc)]
    allow = bool(plan.refused) and request.form.get("allow_data_loss") == "1"
    if plan.refused and not allow:
        errors["allow_data_loss"] = [t("console_refused_needs_allow", loc,
                                       n=len(plan.refused))]
    if errors:
        return _site_page(422, errors=errors, notice=t("fix_errors", loc))
    current = site()
    try:
        applied = migrate(current.engine, registry, allow_data_loss=allow,
                          on_applied=views().migration_audit(g.caller, allow))
    except MigrationRefused:  # the data changed between the plan and the lock
        return _site_page(409, notice=t("console_plan_changed", loc))
    serve_with(current_app, registry)
    changed = len(applied.changes)
    flash(t("console_migrated", loc, n=changed) if changed else t("console_reloaded", loc),
          "success")
    return redirect(url_for("admin_site.site_view"))


def serve_with(app: Flask, registry) -> None:
    """Serve the configuration just applied: this process at once, every other app server
    and worker when it next checks the applied version (engine/runtime/context.py)."""
    app.extensions["crm_runtime"].refresh(force=True, loaded=registry)
