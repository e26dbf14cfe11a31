"""Dashboards in the UI: each visible dashboard as a page of charts, tables and metrics.

The data comes from engine.records.dashboards (the same rules as the report API); the page
embeds it as JSON and web/static/dashboard.js draws it with Chart.js, served from this
application (no CDN: the machines may be offline). Every chart has its table under it, so the
page says everything without JavaScript too, and each table row / bar links to the list of
the records it counts.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal, InvalidOperation

from flask import Blueprint, Flask, Response, g, request, url_for

from engine.errors import RecordError
from engine.records.dashboards import dashboard_data, visible_dashboards
from engine.records.reports import run_report
from engine.records.transfer import cell_text
from web.common import site
from web.exchange_rates import currency_notes
from web.i18n import t
from web.ui import page, record_error, require_sign_in

dashboards = Blueprint("dashboards", __name__)
dashboards.before_request(require_sign_in)
dashboards.register_error_handler(RecordError, record_error)


def register_dashboards(app: Flask) -> None:
    app.register_blueprint(dashboards)

    @app.context_processor
    def dashboard_links():
        caller = getattr(g, "caller", None)
        if caller is None:
            return {"dashboard_links": []}
        return {"dashboard_links": [
            {"name": d.name, "label": d.label.get(caller.locale)}
            for d in visible_dashboards(site().registry, caller)]}


@dashboards.get("/dashboards")
def dashboard_index():
    caller = g.caller
    found = visible_dashboards(site().registry, caller)
    return page("dashboards.html", title=t("dashboards", caller.locale),
                dashboards=[{"name": d.name, "label": d.label.get(caller.locale)}
                            for d in found])


@dashboards.get("/dashboards/<name>")
def dashboard_view(name):
    caller = g.caller
    data = dashboard_data(site().service, caller, name)
    for widget in data["widgets"]:
        if widget["kind"] == "report":
            widget["links"] = [row_link(widget, row) for row in widget["rows"]]
            widget["csv_url"] = url_for("dashboards.report_csv", name=widget["report"])
            widget["currency_notes"] = currency_notes(widget.get("currency"), caller.locale)
    return page("dashboard.html", title=data["label"], dashboard=data)


@dashboards.get("/reports/<name>.csv")
def report_csv(name):
    """A report as CSV (UTF-8 with BOM, so spreadsheets show Chinese; formulas neutralised)."""
    caller = g.caller
    result = run_report(site().service, caller, name, request.args.to_dict(flat=True))
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow([c["label"] for c in result["columns"]])
    for row in result["rows"]:
        writer.writerow([cell_text(_as_number(v)) for v in row])
    return Response(out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}.csv"'})


def _as_number(value):
    """Decimals arrive as text ("-5.00"): written as numbers, not taken for formulas."""
    if isinstance(value, str):
        try:
            return Decimal(value) if value.strip() == value and value else value
        except InvalidOperation:
            return value
    return value


def row_link(widget: dict, row: list) -> str | None:
    """The list of the records one report row counts: filtered on its first group value."""
    if not widget["group_by"]:
        return None
    group = widget["group_by"][0]
    value = row[0]
    field = group["field"]
    if value is None:
        params = {f"{field}__isnull": "true"}
    elif group["bucket"]:
        span = bucket_span(group["bucket"], str(value))
        if span is None:
            return None
        params = {f"{field}__gte": span[0].isoformat(), f"{field}__lt": span[1].isoformat()}
    else:
        params = {field: value}
    return url_for("ui.list_view", entity=widget["entity"], **params)


def bucket_span(bucket: str, label: str) -> tuple[dt.date, dt.date] | None:
    """The dates [start, end) a bucket label of engine.records.reports.bucket stands for."""
    try:
        if bucket == "day":
            start = dt.date.fromisoformat(label)
            return start, start + dt.timedelta(days=1)
        if bucket == "week":
            start = dt.date.fromisoformat(label)
            return start, start + dt.timedelta(days=7)
        if bucket == "month":
            year, month = (int(p) for p in label.split("-"))
            return dt.date(year, month, 1), (dt.date(year + month // 12, month % 12 + 1, 1))
        if bucket == "quarter":
            year, quarter = label.split("-Q")
            first = (int(quarter) - 1) * 3 + 1
            end_year, end_month = (int(year) + 1, 1) if first == 10 else (int(year), first + 3)
            return dt.date(int(year), first, 1), dt.date(end_year, end_month, 1)
        if bucket == "year":
            return dt.date(int(label), 1, 1), dt.date(int(label) + 1, 1, 1)
    except ValueError:
        return None
    return None
