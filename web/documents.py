"""Printable documents over HTTP (docs/ui.md#printable-documents): the HTML view and the PDF
download of a record's declared documents, their links on the record page, and the API.

  GET /<entity>/<id>/documents/<name>        the document as a page (print it from the browser)
  GET /<entity>/<id>/documents/<name>.pdf    the PDF, as a download
  GET /document-assets/<path>                an image of a documents/ folder (asset() in HTML)
  GET /api/v1/<entity>/<id>/documents        {"data": [{name, label, formats}]}
  GET /api/v1/<entity>/<id>/documents/<name>?format=pdf|html[&locale=en|zh]

Permissions are the record's: an unreadable record is 404, a document the caller's roles may
not print is 403. The record service reads and audits; no rule lives here.
"""

from __future__ import annotations

import io

from flask import Blueprint, Flask, abort, g, jsonify, make_response, request, send_file, url_for

from engine.documents.sandbox import IMAGE_TYPES, find_asset
from engine.errors import RecordError
from web.api import entity_for as api_entity, record_error
from web.common import entity_for, site
from web.ui import ui

documents_api = Blueprint("documents_api", __name__, url_prefix="/api/v1")
# a document is markup a consultant wrote: it may style itself and show its images, nothing
# more (no script, no form, no frame, no request elsewhere); sandboxed as a unique origin,
# allowed only the print dialog (a modal) and links opening a new window
DOCUMENT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
                "sandbox allow-popups allow-modals")


def setup(app: Flask) -> None:
    """Register the API routes and the record page's links (the UI routes join `ui`)."""
    app.register_blueprint(documents_api)
    app.jinja_env.globals["document_links"] = document_links


documents_api.register_error_handler(RecordError, record_error)  # the API's error shape


def documents():
    """The renderer of the Site serving this request (built once per configuration)."""
    return site().documents


def document_links(entity, record) -> list[dict]:
    """The record page's links: each document the user may print, as a page and as a PDF."""
    loc = g.caller.locale
    links = []
    for doc in documents().for_entity(g.caller, entity.name):
        page = url_for("ui.print_document", entity=entity.name, record_id=record["id"],
                       name=doc.name)
        links.append({"label": doc.label.get(loc), "html": page, "pdf": page + ".pdf",
                      "description": doc.description.get(loc) if doc.description else ""})
    return links


def _answer(printed):
    if printed.format == "pdf":
        response = send_file(io.BytesIO(printed.content), mimetype="application/pdf",
                             as_attachment=True, download_name=printed.filename)
    else:
        response = make_response(printed.content)
        response.mimetype = "text/html"
        response.headers["Content-Security-Policy"] = DOCUMENT_CSP
    response.headers["Cache-Control"] = "no-store"  # a document holds a customer's data
    return response


def _asset_url(path: str) -> str:
    return url_for("ui.document_asset", name=path)


@ui.get("/<entity>/<int:record_id>/documents/<name>")
def print_document(entity, record_id, name):
    ent = entity_for(entity)
    fmt = "pdf" if name.endswith(".pdf") else "html"
    printed = documents().print(g.caller, ent.name, record_id, name.removesuffix(".pdf"),
                                fmt, request.args.get("locale") or None, _asset_url)
    return _answer(printed)


@ui.get("/document-assets/<path:name>")
def document_asset(name):
    found = find_asset(documents().folders, name)
    if found is None:
        abort(404)
    return send_file(found, mimetype=IMAGE_TYPES[found.suffix.lower()], max_age=3600)


@documents_api.get("/<entity>/<int:record_id>/documents")
def list_documents(entity, record_id):
    ent = api_entity(entity)
    site().service.get(g.caller, ent.name, record_id)  # 404 unless the caller may read it
    loc = g.caller.locale
    return jsonify({"data": [{"name": d.name, "label": d.label.get(loc),
                              "formats": ["html", "pdf"]}
                             for d in documents().for_entity(g.caller, ent.name)]})


@documents_api.get("/<entity>/<int:record_id>/documents/<name>")
def api_document(entity, record_id, name):
    ent = api_entity(entity)
    printed = documents().print(g.caller, ent.name, record_id, name,
                                request.args.get("format") or "pdf",
                                request.args.get("locale") or None,
                                _asset_url)
    return _answer(printed)
