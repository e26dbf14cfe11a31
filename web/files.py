"""Files over HTTP: uploads into file fields and attachments, and downloads of both.

Every download is served as an attachment (`Content-Disposition: attachment`), with
`X-Content-Type-Options: nosniff`, a sandboxing Content-Security-Policy and a content type
that no browser runs (HTML, SVG, XML and scripts go out as application/octet-stream), so an
uploaded file can never act as a page of this site. Reading a file needs what reading its
record (and its field) needs; the record service decides, and a record or field the caller
may not read does not exist (404).

JSON API (an addition to API.md, see docs/files.md):
  GET    /api/v1/<entity>/<id>/files/<field>          the file of a file field
  GET    /api/v1/<entity>/<id>/attachments            {"data": [attachment...]}
  POST   /api/v1/<entity>/<id>/attachments            multipart part `file` (or JSON
                                                      {"name", "content_base64"}) -> 201
  GET    /api/v1/<entity>/<id>/attachments/<aid>      the attachment's file
  DELETE /api/v1/<entity>/<id>/attachments/<aid>      204
and POST/PATCH /api/v1/<entity>[/<id>] also take multipart/form-data (`record_body`).
"""

from __future__ import annotations

import io

from flask import (Blueprint, Flask, flash, g, jsonify, redirect, request, send_file,
                   url_for)

from engine.errors import BadRequest, RecordError
from engine.records.uploads import ACTIVE_TYPES, Upload
from engine.registry.contenttypes import KNOWN_TYPES, TEXT, UNKNOWN
from engine.registry.model import Entity
from web.api import body, entity_for as api_entity, record_error
from web.common import entity_for, site
from web.i18n import t
from web.ui import record_page, ui

files_api = Blueprint("files_api", __name__, url_prefix="/api/v1")
UPLOAD_PART = "file"  # the multipart part an attachment upload is sent in


def setup(app: Flask) -> None:
    """Register the API routes and the record page's helpers (the UI routes join `ui`)."""
    app.register_blueprint(files_api)
    app.jinja_env.globals["attachments_panel"] = attachments_panel
    app.jinja_env.globals["file_link"] = file_link


files_api.register_error_handler(RecordError, record_error)  # the API's error shape


# ---------------------------------------------------------------- reading requests

def uploads_in(files) -> dict[str, Upload]:
    """The uploaded parts of a multipart request as Uploads, one per part name; two files
    in one part name are refused (400 naming it), as a field holds one file."""
    result = {}
    for name in files:
        parts = [p for p in files.getlist(name) if p.filename or p.content_length]
        if len(parts) > 1:
            raise BadRequest(f"{name}: send one file", {name: ["send one file"]})
        if parts:
            result[name] = Upload(parts[0].filename or "", parts[0].read())
    return result


def record_body() -> dict:
    """A record write's input: the JSON body, or a multipart/form-data body whose text parts
    are field values (as a web form sends them; a repeated part is a list) and whose file
    parts are files for the file fields of the same names."""
    if request.mimetype != "multipart/form-data":
        return body()
    data: dict = {}
    for name in request.form:
        values = request.form.getlist(name)
        data[name] = values[0] if len(values) == 1 else values
    data.update(uploads_in(request.files))
    return data


def attachment_upload() -> Upload | dict:
    """The file of an attachment upload: multipart part `file`, or a JSON body."""
    if request.mimetype == "multipart/form-data":
        found = uploads_in(request.files).get(UPLOAD_PART)
        if found is None:
            raise BadRequest(f"{UPLOAD_PART}: send the file in a part named '{UPLOAD_PART}'",
                             {UPLOAD_PART: ["is required"]})
        return found
    return body()


# ---------------------------------------------------------------- answering with a file

def download_type(content_type: str) -> str:
    """The content type a stored file is served with: never one a browser would run."""
    if content_type == TEXT:
        return TEXT  # Flask adds "; charset=utf-8": text is only recognised as UTF-8
    if content_type in ACTIVE_TYPES or content_type.startswith("text/") or \
            content_type not in KNOWN_TYPES:
        return UNKNOWN
    return content_type


def download(meta: dict, data: bytes):
    """A response that makes the browser save the file, whatever it holds."""
    response = send_file(io.BytesIO(data), mimetype=download_type(meta["content_type"]),
                         as_attachment=True, download_name=meta["name"] or "file",
                         etag=meta.get("sha256") or False, max_age=0, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# ---------------------------------------------------------------- JSON API

@files_api.get("/<entity>/<int:record_id>/files/<field>")
def api_field_file(entity, record_id, field):
    ent = api_entity(entity)
    return download(*site().service.attachments.field_content(g.caller, ent.name, record_id,
                                                               field))


@files_api.get("/<entity>/<int:record_id>/attachments")
def api_attachments(entity, record_id):
    ent = api_entity(entity)
    return jsonify({"data": site().service.attachments.list(g.caller, ent.name, record_id)})


@files_api.post("/<entity>/<int:record_id>/attachments")
def api_attach(entity, record_id):
    ent = api_entity(entity)
    added = site().service.attachments.add(g.caller, ent.name, record_id, attachment_upload())
    return jsonify({"data": added}), 201


@files_api.get("/<entity>/<int:record_id>/attachments/<int:attachment_id>")
def api_attachment_file(entity, record_id, attachment_id):
    ent = api_entity(entity)
    return download(*site().service.attachments.content(g.caller, ent.name, record_id,
                                                        attachment_id))


@files_api.delete("/<entity>/<int:record_id>/attachments/<int:attachment_id>")
def api_detach(entity, record_id, attachment_id):
    ent = api_entity(entity)
    site().service.attachments.delete(g.caller, ent.name, record_id, attachment_id)
    return "", 204


# ---------------------------------------------------------------- the record page

def file_link(entity: Entity, record: dict, name: str) -> str | None:
    """The download link of a file field shown on the record page (None: not a file, or
    empty)."""
    fld = entity.fields.get(name)
    if fld is None or fld.type != "file" or not record.get(name):
        return None
    return url_for("ui.download_field", entity=entity.name, record_id=record["id"], field=name)


def attachments_panel(entity: Entity, record: dict) -> dict:
    """The record page's attachments: each with its links, and whether to offer upload and
    delete (a hint from the caller's grants; the service decides on the request)."""
    caller = g.caller
    service = site().service
    items = service.attachments.list(caller, entity.name, record["id"])
    users = {u["id"]: u["display_name"] or u["username"] for u in site().active_users()}
    for item in items:
        item["url"] = url_for("ui.download_attachment", entity=entity.name,
                              record_id=record["id"], attachment_id=item["id"])
        item["delete_url"] = url_for("ui.detach", entity=entity.name, record_id=record["id"],
                                     attachment_id=item["id"])
        item["by"] = users.get(item["created_by"], f"#{item['created_by']}")
        item["at"] = (item["created_at"] or "")[:16].replace("T", " ") + " UTC"
        item["size_text"] = size_text(item["size"])
    return {"items": items, "can_change": service.allows(caller, entity, record, "update"),
            "upload_url": url_for("ui.attach", entity=entity.name, record_id=record["id"])}


def size_text(size: int) -> str:
    """A size as a person reads it: 512 B, 12.5 KB, 3.2 MB."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


@ui.get("/<entity>/<int:record_id>/files/<field>")
def download_field(entity, record_id, field):
    ent = entity_for(entity)
    return download(*site().service.attachments.field_content(g.caller, ent.name, record_id,
                                                               field))


@ui.get("/<entity>/<int:record_id>/attachments/<int:attachment_id>")
def download_attachment(entity, record_id, attachment_id):
    ent = entity_for(entity)
    return download(*site().service.attachments.content(g.caller, ent.name, record_id,
                                                        attachment_id))


@ui.post("/<entity>/<int:record_id>/attachments")
def attach(entity, record_id):
    ent = entity_for(entity)
    loc = g.caller.locale
    try:
        upload = uploads_in(request.files).get(UPLOAD_PART)
        if upload is None:
            raise BadRequest(t("attachment_choose", loc))
        added = site().service.attachments.add(g.caller, ent.name, record_id, upload)
    except RecordError as exc:
        if exc.status == 404:
            raise
        reasons = [m for items in exc.fields.values() for m in items] or [exc.message]
        return record_page(ent, record_id, status=exc.status,
                           top_errors=[t("attachment_refused", loc, reason=r)
                                       for r in reasons])
    flash(t("attachment_added", loc, name=added["name"]), "success")
    return redirect(url_for("ui.record_view", entity=ent.name, record_id=record_id) +
                    "#attachments")


@ui.post("/<entity>/<int:record_id>/attachments/<int:attachment_id>/delete")
def detach(entity, record_id, attachment_id):
    ent = entity_for(entity)
    loc = g.caller.locale
    try:
        site().service.attachments.delete(g.caller, ent.name, record_id, attachment_id)
    except RecordError as exc:
        if exc.status == 404:
            raise
        return record_page(ent, record_id, status=exc.status, top_errors=[exc.message])
    flash(t("attachment_deleted", loc), "success")
    return redirect(url_for("ui.record_view", entity=ent.name, record_id=record_id) +
                    "#attachments")
