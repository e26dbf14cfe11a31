"""The admin console's read pages: audit log, webhook deliveries, schedules, notifications.

Admins only (web/admin.py's check runs first: anyone else gets 403 before anything is read
or written), never cached. Filters are in the query string; every list is one keyset page
(engine/records/adminviews.py), newest first. A bad filter is a 400 naming the field, shown
next to it. Times are shown in UTC in the admin's language and carry their ISO value, which
admin_console.js turns into the browser's time zone; date filters are days in the time zone
the browser reports (`tz`), UTC without one.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Blueprint, Flask, abort, flash, g, redirect, request, url_for
from markupsafe import Markup

from engine.errors import RecordError
from engine.records.adminviews import (CONFIG_ENTITY, WEBHOOK_ENTITY, WEBHOOK_STATUSES,
                                       AdminViews, AuditFilter, BadCursor)
from web.admin import no_store, require_admin
from web.common import site
from web.i18n import STRINGS, t
from web.ui import page, readable, record_error

console = Blueprint("console", __name__, url_prefix="/admin")
console.before_request(require_admin)
console.after_request(no_store)
console.register_error_handler(RecordError, record_error)
PAGE_SIZE = 50
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def register_console(app: Flask) -> None:
    from web.admin_site import site_pages
    app.register_blueprint(console)
    app.register_blueprint(site_pages)
    app.add_template_filter(when, "admin_when")


def views() -> AdminViews:
    # built per request from the serving Site: the Site is swapped whole after a migration
    current = site()
    return AdminViews(current.service.schema, current.engine)


# ---------------------------------------------------------------- shown values

def when(value: dt.datetime | None, locale: str = "en") -> Markup:
    """A UTC time in the admin's language, with its ISO value for the browser's clock."""
    if value is None:
        return Markup("")
    utc = value.astimezone(dt.timezone.utc)
    text = f"{utc.year}年{utc.month}月{utc.day}日 {utc:%H:%M} UTC" if locale == "zh" \
        else f"{utc.day} {utc:%b %Y %H:%M} UTC"
    return Markup('<time datetime="{}" data-local>{}</time>').format(
        utc.isoformat().replace("+00:00", "Z"), text)


def _who(row: dict) -> str:
    return row.get("display_name") or row.get("username") or "-"


def _link(entity: str, record_id: int | None) -> str | None:
    """Where an audit entry's subject is shown, if the admin can open it there."""
    if record_id is None:
        return None
    if entity == "user":
        return url_for("admin.user", user_id=record_id)
    if entity == CONFIG_ENTITY:
        return url_for("admin_site.site_view")
    if entity == WEBHOOK_ENTITY:
        return url_for("console.webhook", message_id=record_id)
    target = site().registry.entities.get(entity)
    if target is None or target.parent or not readable(g.caller, target):
        return None
    return url_for("ui.record_view", entity=entity, record_id=record_id)


def _subject(entity: str, locale: str) -> str:
    special = {"user": "admin_users", CONFIG_ENTITY: "console_configuration",
               WEBHOOK_ENTITY: "console_webhooks"}
    if entity in special:
        return t(special[entity], locale)
    target = site().registry.entities.get(entity)
    return target.label.get(locale) if target is not None else entity


def _action(action: str, locale: str) -> str:
    kind, _, detail = action.partition(":")
    if kind in ("create", "update", "delete") and not detail:
        return t(f"action_{kind}", locale)
    if kind == "transition":
        return f"{t('action_transition', locale)}: {detail}"
    if kind == "print":  # a document printed (web/documents.py)
        doc = site().registry.documents.get(detail)
        return f"{t('console_action_print', locale)}: {doc.label.get(locale) if doc else detail}"
    key = f"user_action_{detail}" if kind == "user" else f"console_action_{kind}_{detail}"
    return t(key, locale) if key in STRINGS else action


def _change_lines(changes) -> list[str]:
    """An audit entry's changes as short lines: `field: old → new`, or a migration's steps."""
    if not isinstance(changes, dict):
        return []
    lines = []
    for name, value in changes.items():
        if isinstance(value, list) and len(value) == 2 and name != "steps":
            lines.append(f"{name}: {_short(value[0])} → {_short(value[1])}")
        elif isinstance(value, list):
            lines.extend(f"{name}: {_short(v)}" for v in value)
        else:
            lines.append(f"{name}: {_short(value)}")
    return lines


def _short(value, limit: int = 120) -> str:
    text = "∅" if value is None else (value if isinstance(value, str)
                                      else json.dumps(value, ensure_ascii=False))
    return text if len(text) <= limit else text[:limit - 1] + "…"


# ---------------------------------------------------------------- filters

class Filters:
    """The query string's filters, checked; problems by field in the admin's language."""

    def __init__(self, *names: str):
        self.locale = g.caller.locale
        self.errors: dict[str, list[str]] = {}
        # only the page's own filters are read and carried into its page links
        self.values = {name: request.args.get(name, "").strip() for name in names + ("tz",)}
        self.after = request.args.get("after", "").strip() or None

    def text(self, name: str) -> str | None:
        return self.values.get(name) or None

    def fail(self, field: str, key: str, **params) -> None:
        self.errors.setdefault(field, []).append(t(key, self.locale, **params))

    def integer(self, name: str) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        if not value.isdigit() or len(value) > 18:
            self.fail(name, "console_not_id")
            return None
        return int(value)

    def user(self, name: str = "user") -> int | None:
        value = self.text(name)
        if value is None:
            return None
        found = views().user_id(value)
        if found is None:
            self.fail(name, "console_no_such_user", name=value)
        return found

    def zone(self) -> dt.tzinfo:
        value = self.text("tz")
        if value is None:
            return dt.timezone.utc
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            self.fail("tz", "console_bad_zone", zone=value)
            return dt.timezone.utc

    def days(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """`from` and `to` as [start of from, start of the day after to) in the zone."""
        zone = self.zone()
        bounds = []
        for name, extra in (("from", 0), ("to", 1)):
            value = self.text(name)
            if value is None:
                bounds.append(None)
                continue
            try:
                day = dt.date.fromisoformat(value) + dt.timedelta(days=extra)
            except (ValueError, OverflowError):
                self.fail(name, "console_not_date")
                bounds.append(None)
                continue
            bounds.append(dt.datetime.combine(day, dt.time(), zone))
        since, until = bounds
        if since and until and since >= until:
            self.fail("to", "console_to_before_from")
        return since, until

    def cursor(self) -> str | None:
        return self.after


def _listing(template: str, filters: Filters, fetch, **context):
    """Render a list page: 400 with the problems when a filter is wrong, else one page."""
    loc = g.caller.locale
    rows, next_cursor = [], None
    status = 400 if filters.errors else 200
    if not filters.errors:
        try:
            rows, next_cursor = fetch()
        except BadCursor:
            filters.fail("after", "console_bad_cursor")
            status = 400
    args = {k: v for k, v in filters.values.items() if v}
    next_url = url_for(request.endpoint, **request.view_args, **args, after=next_cursor) \
        if next_cursor else None
    first_url = url_for(request.endpoint, **request.view_args, **args) \
        if filters.after else None
    return page(template, status, rows=rows, values=filters.values, errors=filters.errors,
                next_url=next_url, first_url=first_url,
                top_errors=[t("console_bad_filter", loc)] if filters.errors else [],
                **context)


# ---------------------------------------------------------------- audit log

@console.get("/audit")
def audit():
    loc = g.caller.locale
    filters = Filters("user", "entity", "record", "action", "from", "to")
    user_id = filters.user()
    entity = filters.text("entity")
    choices = _entity_choices(loc)
    if entity and entity not in {c["name"] for c in choices} and not _NAME.match(entity):
        filters.fail("entity", "console_unknown_entity", name=entity)
    record_id = filters.integer("record")
    if record_id is not None and not entity:
        filters.fail("record", "console_record_needs_entity")
    since, until = filters.days()
    where = AuditFilter(user_id=user_id, entity=entity, record_id=record_id,
                        action=filters.text("action"), since=since, until=until)

    def fetch():
        rows, after = views().audit_page(where, PAGE_SIZE, filters.cursor())
        return [{"at": r["at"], "who": _who(r), "user_id": r["user_id"],
                 "username": r["username"],
                 "action": _action(r["action"], loc),
                 "subject": f"{_subject(r['entity'], loc)} #{r['record_id']}",
                 "link": _link(r["entity"], r["record_id"]),
                 "only": url_for("console.audit", entity=r["entity"], record=r["record_id"]),
                 "changes": _change_lines(r["changes"])} for r in rows], after

    return _listing("admin_audit.html", filters, fetch, title=t("console_audit", loc),
                    entities=choices)


def _entity_choices(locale: str) -> list[dict]:
    entities = [{"name": e.name, "label": e.label.get(locale)}
                for e in site().registry.entities.values()]
    entities.sort(key=lambda c: c["label"].lower())
    return entities + [{"name": name, "label": _subject(name, locale)}
                       for name in ("user", CONFIG_ENTITY, WEBHOOK_ENTITY)]


# ---------------------------------------------------------------- webhooks

@console.get("/webhooks")
def webhooks():
    loc = g.caller.locale
    filters = Filters("status", "automation")
    status = filters.text("status")
    if status and status not in WEBHOOK_STATUSES:
        filters.fail("status", "console_bad_choice")
    automation = filters.text("automation")
    if automation and not _NAME.match(automation):
        filters.fail("automation", "console_unknown_automation", name=automation)

    def fetch():
        return views().webhook_page(status, automation, PAGE_SIZE, filters.cursor())

    names = sorted(a.name for a in site().registry.automations.values()
                   if any(x.kind == "webhook" for x in a.actions))
    return _listing("admin_webhooks.html", filters, fetch, title=t("console_webhooks", loc),
                    statuses=[(s, t(f"console_status_{s}", loc)) for s in WEBHOOK_STATUSES],
                    automations=names)


@console.get("/webhooks/<int:message_id>")
def webhook(message_id):
    loc = g.caller.locale
    message, attempts = views().webhook(message_id)
    try:
        body = json.dumps(json.loads(message["body"]), indent=2, ensure_ascii=False)
    except ValueError:
        body = message["body"]
    return page("admin_webhook.html", title=t("console_webhook_n", loc, n=message_id),
                message=message, attempts=attempts, body=body)


@console.post("/webhooks/<int:message_id>/retry")
def retry_webhook(message_id):
    loc = g.caller.locale
    try:
        views().retry_webhook(message_id, g.caller)
    except RecordError as exc:
        if exc.status == 404:
            raise
        flash(t("console_already_delivered", loc), "error")
    else:
        site().service.queue.send("webhooks.deliver", ids=[message_id])
        flash(t("console_retry_queued", loc), "success")
    return redirect(url_for("console.webhook", message_id=message_id))


# ---------------------------------------------------------------- schedules

def _schedule_text(automation, locale: str) -> str:
    if automation.schedule_at:
        return t("console_daily_at", locale, time=automation.schedule_at)
    return t("console_every", locale, n=automation.schedule_seconds)


@console.get("/schedules")
def schedules():
    loc = g.caller.locale
    scheduled = sorted((a for a in site().registry.automations.values()
                        if a.schedule is not None), key=lambda a: a.name)
    last = views().last_ticks([a.name for a in scheduled])
    rows = [{"name": a.name, "label": a.label.get(loc),
             "entity": _subject(a.entity, loc), "schedule": _schedule_text(a, loc),
             "tick": last.get(a.name)} for a in scheduled]
    return page("admin_schedules.html", title=t("console_schedules", loc), rows=rows)


@console.get("/schedules/<name>")
def schedule(name):
    loc = g.caller.locale
    automation = site().registry.automations.get(name)
    if automation is None or automation.schedule is None:
        abort(404)
    filters = Filters()

    def fetch():
        return views().failure_page(name, PAGE_SIZE, filters.cursor())

    return _listing("admin_schedule.html", filters, fetch, title=automation.label.get(loc),
                    automation=automation, schedule=_schedule_text(automation, loc),
                    ticks=views().ticks_of(name))


# ---------------------------------------------------------------- notifications

@console.get("/notifications")
def notifications():
    loc = g.caller.locale
    filters = Filters("user", "unread")
    user_id = filters.user()
    unread = filters.text("unread") == "1"

    def fetch():
        rows, after = views().notification_page(user_id, unread, PAGE_SIZE, filters.cursor())
        return [{**r, "who": _who(r),
                 "title_text": _label(r["title"], loc), "message_text": _label(r["message"], loc),
                 "subject": f"{_subject(r['entity'], loc)} #{r['record_id']}"
                 if r["entity"] and r["record_id"] else "",
                 "link": _link(r["entity"], r["record_id"]) if r["entity"] else None}
                for r in rows], after

    return _listing("admin_notifications.html", filters, fetch,
                    title=t("console_notifications", loc))


def _label(texts, locale: str) -> str:
    """A stored label ({"en": ..., "zh": ...}) in the admin's language, else any."""
    if not texts:
        return ""
    if isinstance(texts, str):
        return texts
    return texts.get(locale) or texts.get("en") or next(iter(texts.values()), "")


# ---------------------------------------------------------------- background jobs

@console.get("/jobs")
def jobs():
    """Workers, the queue, the work waiting and the jobs that failed (engine/runtime)."""
    from flask import current_app
    from engine.runtime import status
    loc = g.caller.locale
    service = site().service
    queue = current_app.extensions["crm_runtime"].queue
    try:
        depth = queue.depth() if hasattr(queue, "depth") else None
    except Exception:  # noqa: BLE001 - a broker that is down: the page says so
        depth = {}
    before = request.args.get("before", "")
    failures = status.failures(service, PAGE_SIZE, int(before) if before.isdigit() else None)
    for failure in failures:
        failure["payload_text"] = json.dumps(failure["payload"], ensure_ascii=False)[:500]
    return page("admin_jobs.html", title=t("console_jobs", loc), depth=depth,
                workers=status.workers(service), waiting=status.waiting_work(service),
                failures=failures,
                next_before=failures[-1]["id"] if len(failures) == PAGE_SIZE else None)
