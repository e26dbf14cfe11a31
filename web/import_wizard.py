"""The import wizard of the admin console (`/admin/import`): upload a CSV or XLSX file, map its
columns to fields, see the first rejected rows of a dry run, run it with a progress bar, and
download the rejected rows to fix and import again.

Admins only, like the rest of /admin (web.admin.require_admin runs first; web/session.py checks
the CSRF token of every POST). The steps live in engine/records/importjobs.py; this module turns
forms into calls and refusals into messages in the admin's language.
"""

from __future__ import annotations

from flask import (Blueprint, Flask, Response, current_app, g, jsonify, redirect, request,
                   url_for)

from engine.errors import Conflict, RecordError
from engine.records.importfiles import REASON_COLUMN, UploadRefused
from engine.records.importjobs import PREVIEW_ROWS, ImportJobs
from engine.records.importmapping import IGNORE, MappingRefused
from web.admin import no_store, require_admin
from web.common import entity_plural, site
from web.i18n import t
from web.ui import page, record_error

wizard = Blueprint("admin_import", __name__, url_prefix="/admin/import")
wizard.before_request(require_admin)
wizard.after_request(no_store)
wizard.register_error_handler(RecordError, record_error)


def register_import_wizard(app: Flask) -> None:
    app.register_blueprint(wizard)


def jobs() -> ImportJobs:
    # built per request (a few table lookups) so that it follows the site's current service
    return ImportJobs(site().service)


def _limit_mb() -> str:
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    return f"{limit / (1024 * 1024):g}"


def _refusal(exc: UploadRefused) -> str:
    return t(f"import_{exc.extra['key']}", g.caller.locale, **exc.extra["params"])


# ---------------------------------------------------------------- step 1: upload

def _upload_page(status: int = 200, errors: dict | None = None, chosen: str = ""):
    loc = g.caller.locale
    entities = [{"name": e.name, "label": entity_plural(e, loc)}
                for e in jobs().entities(g.caller)]
    entities.sort(key=lambda e: e["label"].lower())
    labels = {e["name"]: e["label"] for e in entities}
    recent = jobs().recent(g.caller)
    for job in recent:
        job["entity_label"] = labels.get(job["entity"], job["entity"])
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    return page("admin_import.html", status, title=t("import_title", loc), entities=entities,
                chosen=chosen, errors=errors or {}, recent=recent, max_bytes=limit,
                max_mb=_limit_mb())


@wizard.get("")
def index():
    return _upload_page()


@wizard.post("")
def upload():
    loc = g.caller.locale
    entity = request.form.get("entity", "")
    upload_ = request.files.get("file")
    errors: dict[str, list[str]] = {}
    if entity not in {e.name for e in jobs().entities(g.caller)}:
        errors["entity"] = [t("import_choose_entity", loc)]
    if upload_ is None or not upload_.filename:
        errors["file"] = [t("import_choose_file", loc)]
    if errors:
        return _upload_page(422, errors, entity)
    content = upload_.read()
    try:
        job_id = jobs().upload(g.caller, entity, upload_.filename, content)
    except UploadRefused as exc:
        return _upload_page(exc.status, {"file": [_refusal(exc)]}, entity)
    return redirect(url_for("admin_import.mapping", job_id=job_id))


@wizard.errorhandler(413)
def too_large(exc):
    """A body over the site's limit (MAX_CONTENT_LENGTH, from app.yaml's max_body_mb): the
    upload page says so. The limit is found while the CSRF check reads the form, before the
    admin check has run, so it runs here first: nobody else learns anything."""
    refused = require_admin()
    if refused is not None:
        return refused
    message = t("import_too_large", g.caller.locale, mb=_limit_mb())
    return _upload_page(413, {"file": [message]})


# ---------------------------------------------------------------- step 2: map the columns

def _mapping_page(job: dict, mapping: list[str], status: int = 200, errors: dict | None = None,
                  all_or_nothing: bool = False):
    loc = g.caller.locale
    entity = site().registry.entities[job["entity"]]
    offered = jobs().targets(g.caller, job)
    choices = [{"value": IGNORE, "label": t("import_ignore", loc)},
               {"value": "id", "label": t("import_key_id", loc)},
               {"value": "version", "label": t("import_key_version", loc)}]
    fields = sorted(({"value": name, "label": f"{fld.label.get(loc)} ({name})"}
                     for name, fld in offered.items()), key=lambda c: c["label"].lower())
    columns = []
    for i, name in enumerate(job["header"]):
        columns.append({"index": i, "name": name, "reason": name.strip() == REASON_COLUMN,
                        "samples": [row[i] for row in job["sample"] if i < len(row) and row[i]],
                        "target": mapping[i] if i < len(mapping) else IGNORE})
    errors = errors or {}
    top = errors.get("__all__") or ([t("fix_errors", loc)] if errors else [])
    return page("admin_import_map.html", status, title=t("import_map_title", loc), job=job,
                entity_label=entity_plural(entity, loc), columns=columns,
                choices=choices + fields, errors=errors, top_errors=top,
                all_or_nothing=all_or_nothing)


@wizard.get("/<int:job_id>/map")
def mapping(job_id):
    job = jobs().get(g.caller, job_id)
    if job["status"] not in ("uploaded", "mapped"):
        return redirect(url_for("admin_import.job", job_id=job_id))
    return _mapping_page(job, jobs().proposed_mapping(g.caller, job),
                         all_or_nothing=bool(job["all_or_nothing"]))


@wizard.post("/<int:job_id>/map")
def save_mapping(job_id):
    loc = g.caller.locale
    job = jobs().get(g.caller, job_id)
    # one entry per column of the stored header, whatever else the form carries
    chosen = [request.form.get(f"col-{i}", IGNORE).strip() for i in range(len(job["header"]))]
    all_or_nothing = request.form.get("all_or_nothing") == "1"
    try:
        jobs().save_mapping(g.caller, job_id, chosen, all_or_nothing)
    except MappingRefused as exc:
        errors = {column: [t(f"import_{key}", loc, **params) for key, params in items]
                  for column, items in exc.extra["problems"].items()}
        return _mapping_page(job, chosen, 422, errors, all_or_nothing)
    except Conflict:
        return redirect(url_for("admin_import.job", job_id=job_id))
    return redirect(url_for("admin_import.preview", job_id=job_id))


# ---------------------------------------------------------------- step 3: dry run, then run

@wizard.get("/<int:job_id>/preview")
def preview(job_id):
    job = jobs().get(g.caller, job_id)
    if job["status"] == "uploaded":
        return redirect(url_for("admin_import.mapping", job_id=job_id))
    if job["status"] != "mapped":
        return redirect(url_for("admin_import.job", job_id=job_id))
    result = jobs().preview(g.caller, job_id)
    entity = site().registry.entities[job["entity"]]
    loc = g.caller.locale
    missing = [entity.fields[n].label.get(loc) for n in result.unmapped_required]
    return page("admin_import_preview.html", title=t("import_preview_title", loc), job=job,
                result=result, missing=missing, preview_rows=PREVIEW_ROWS,
                entity_label=entity_plural(entity, loc))


@wizard.post("/<int:job_id>/run")
def run(job_id):
    try:
        jobs().start(g.caller, job_id)
    except Conflict:
        pass  # already running or finished: its page says which
    return redirect(url_for("admin_import.job", job_id=job_id))


# ---------------------------------------------------------------- step 4: progress and summary

@wizard.get("/<int:job_id>")
def job(job_id):
    job = jobs().get(g.caller, job_id)
    if job["status"] in ("uploaded", "mapped"):
        return redirect(url_for("admin_import.mapping", job_id=job_id))
    loc = g.caller.locale
    entity = site().registry.entities.get(job["entity"])
    return page("admin_import_job.html", title=t("import_job_title", loc, name=job["file_name"]),
                job=job, progress=jobs().progress(g.caller, job_id),
                entity_label=entity_plural(entity, loc) if entity else job["entity"])


@wizard.get("/<int:job_id>/progress")
def progress(job_id):
    return jsonify(jobs().progress(g.caller, job_id))


@wizard.get("/<int:job_id>/rejected")
def rejected(job_id):
    name, mimetype, data = jobs().rejected_download(g.caller, job_id)
    return Response(data, mimetype=mimetype, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{_quoted(name)}"})


def _quoted(name: str) -> str:
    from urllib.parse import quote
    return quote(name, safe="")
