"""Mail over HTTP: a record's messages (timeline), sending from a record, search, and
attachment downloads through the same permission-checked path as record attachments.

JSON API (an addition to API.md, see docs/mail.md):
  GET  /api/v1/<entity>/<id>/messages                      {"data": [message...], "next_cursor"}
  POST /api/v1/<entity>/<id>/messages                      send: JSON or multipart -> 201
  GET  /api/v1/<entity>/<id>/messages/<mid>/attachments/<aid>   the attachment's file
  GET  /api/v1/mail/messages?q=&unlinked=true              search the messages the caller sees
  GET  /api/v1/mail/messages/<mid>                         one message
  POST /api/v1/mail/messages/<mid>/links                   {"entity", "id"}: link it by hand
"""

from __future__ import annotations

import base64
import binascii

from flask import Blueprint, Flask, flash, g, jsonify, redirect, render_template, request, \
    url_for

from engine.errors import BadRequest, RecordError
from engine.mail.send import send_from_record
from engine.mail.timeline import MailReader
from engine.records.uploads import Upload
from web.api import body, entity_for as api_entity, record_error
from web.common import entity_for, site
from web.files import download, size_text
from web.i18n import t
from web.ui import navigation, record_page, ui

mail_api = Blueprint("mail_api", __name__, url_prefix="/api/v1")
ATTACHMENTS_PART = "attachments"  # the multipart part (repeatable) files are sent in
SEND_FIELDS = ("to", "cc", "subject", "body", "in_reply_to")


def setup(app: Flask) -> None:
    app.register_blueprint(mail_api)
    app.jinja_env.globals["mail_panel"] = mail_panel


def reader() -> MailReader:
    return MailReader(site().service)


mail_api.register_error_handler(RecordError, record_error)  # the API's error shape


# ---------------------------------------------------------------- JSON API

@mail_api.get("/<entity>/<int:record_id>/messages")
def api_messages(entity, record_id):
    ent = api_entity(entity)
    rows, cursor = reader().for_record(g.caller, ent.name, record_id,
                                       request.args.get("limit"), request.args.get("cursor"))
    return jsonify({"data": rows, "next_cursor": cursor})


@mail_api.post("/<entity>/<int:record_id>/messages")
def api_send(entity, record_id):
    ent = api_entity(entity)
    data, uploads = _send_input()
    sent = send_from_record(site().service, g.caller, ent.name, record_id, data, uploads)
    return jsonify({"data": sent}), 201


@mail_api.get("/<entity>/<int:record_id>/messages/<int:message_id>/attachments/"
              "<int:attachment_id>")
def api_attachment(entity, record_id, message_id, attachment_id):
    ent = api_entity(entity)
    return download(*reader().attachment(g.caller, ent.name, record_id, message_id,
                                         attachment_id))


@mail_api.get("/mail/messages")
def api_search():
    unlinked = request.args.get("unlinked", "").lower() in ("1", "true", "yes")
    rows, cursor = reader().search(g.caller, request.args.get("q", ""),
                                   request.args.get("limit"), request.args.get("cursor"),
                                   unlinked=unlinked)
    return jsonify({"data": rows, "next_cursor": cursor})


@mail_api.get("/mail/messages/<int:message_id>")
def api_message(message_id):
    return jsonify({"data": reader().message(g.caller, message_id)})


@mail_api.post("/mail/messages/<int:message_id>/links")
def api_link(message_id):
    data = body()
    linked = reader().link(g.caller, message_id, data.get("entity"), data.get("id"))
    return jsonify({"data": linked}), 201


def _send_input() -> tuple[dict, list[Upload]]:
    """A send request's fields and files: JSON (`attachments`: [{name, content_base64}]) or
    multipart/form-data (text parts, and file parts named `attachments`)."""
    if request.mimetype == "multipart/form-data":
        data = {}
        for name in SEND_FIELDS:
            values = request.form.getlist(name)
            if values:
                data[name] = values[0] if len(values) == 1 else values
        uploads = [Upload(p.filename or "", p.read()) for p in
                   request.files.getlist(ATTACHMENTS_PART) if p.filename or p.content_length]
        return data, uploads
    data = body()
    unknown = sorted(set(data) - set(SEND_FIELDS) - {ATTACHMENTS_PART})
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(unknown)}",
                         {name: ["is not a field of a message"] for name in unknown})
    uploads = []
    for i, item in enumerate(data.pop(ATTACHMENTS_PART, None) or []):
        try:
            uploads.append(Upload(str(item.get("name") or ""),
                                  base64.b64decode(item["content_base64"], validate=True)))
        except (AttributeError, KeyError, TypeError, binascii.Error, ValueError):
            raise BadRequest(f"attachments[{i}]: send {{name, content_base64}}",
                             {ATTACHMENTS_PART: [f"item {i}: send {{name, content_base64}} "
                                                 "with valid base64"]}) from None
    return data, uploads


# ---------------------------------------------------------------- the record page

def mail_panel(entity, record: dict) -> dict | None:
    """The record page's mail card: its threads (newest thread first, each oldest message
    first) and the compose form's defaults; None where mail does not go with the entity."""
    mail = reader()
    if not mail.linkable(entity.name):
        return None
    caller = g.caller
    rows, more = mail.for_record(caller, entity.name, record["id"], 100)
    threads: dict[int, list] = {}
    for row in rows:  # newest first, so threads come in the order of their newest message
        threads.setdefault(row["thread_id"] or row["id"], []).append(row)
        row["at"] = (row["sent_at"] or "")[:16].replace("T", " ") + " UTC"
        row["people"] = ", ".join(a["name"] or a["address"] for a in row["to"])
        for attachment in row["attachments"]:
            attachment["url"] = url_for("ui.mail_attachment", entity=entity.name,
                                        record_id=record["id"], message_id=row["id"],
                                        attachment_id=attachment["id"])
            attachment["size_text"] = size_text(attachment["size"])
    service = site().service
    config = site().registry.mail
    to = next((record.get(m.field) for m in config.matches
               if m.entity == entity.name and record.get(m.field)), "") or ""
    return {"threads": [list(reversed(messages)) for messages in threads.values()],
            "more": more is not None,
            "can_send": config.smtp is not None and service.allows(caller, entity, record,
                                                                   "update"),
            "send_url": url_for("ui.send_mail", entity=entity.name, record_id=record["id"]),
            "to": to}


@ui.post("/<entity>/<int:record_id>/mail")
def send_mail(entity, record_id):
    ent = entity_for(entity)
    loc = g.caller.locale
    data = {name: request.form.get(name, "") for name in SEND_FIELDS}
    uploads = [Upload(p.filename or "", p.read()) for p in
               request.files.getlist(ATTACHMENTS_PART) if p.filename or p.content_length]
    try:
        send_from_record(site().service, g.caller, ent.name, record_id, data, uploads)
    except RecordError as exc:
        if exc.status == 404:
            raise
        reasons = [f"{t('mail_' + k, loc) if k in SEND_FIELDS or k == ATTACHMENTS_PART else k}:"
                   f" {m}" for k, items in exc.fields.items() for m in items] or [exc.message]
        return record_page(ent, record_id, status=exc.status,
                           top_errors=[t("mail_not_sent", loc, reason=r) for r in reasons])
    flash(t("mail_sent", loc), "success")
    return redirect(url_for("ui.record_view", entity=ent.name, record_id=record_id) + "#mail")


@ui.get("/<entity>/<int:record_id>/mail/<int:message_id>/attachments/<int:attachment_id>")
def mail_attachment(entity, record_id, message_id, attachment_id):
    ent = entity_for(entity)
    return download(*reader().attachment(g.caller, ent.name, record_id, message_id,
                                         attachment_id))


@ui.get("/mail/search")
def mail_search():
    """Search the messages the user may see."""
    caller = g.caller
    query = request.args.get("q", "").strip()
    rows, cursor = reader().search(caller, query, 50, request.args.get("cursor")) \
        if query else ([], None)
    registry = site().registry
    for row in rows:
        row["at"] = (row["sent_at"] or "")[:16].replace("T", " ") + " UTC"
        row["records"] = [{"url": url_for("ui.record_view", entity=link["entity"],
                                          record_id=link["id"]),
                           "label": f"{registry.entities[link['entity']].label.get(caller.locale)}"
                                    f" #{link['id']}"} for link in row["links"]
                          if link["entity"] in registry.entities]
    return render_template("mail_search.html", locale=caller.locale, user=caller,
                           nav=navigation(caller), query=query, rows=rows, cursor=cursor)
