"""Inbound webhooks over HTTP: `POST /api/v1/inbound/<source>` (docs/processes.md).

The path is public (no bearer token): a request proves where it comes from by its HMAC
signature, which `engine.records.inbound` checks before the body is even parsed. Everything
else (finding the record, validation, idempotency, audit) happens in the engine.
"""

from __future__ import annotations

import re

from flask import Blueprint, Flask, current_app, jsonify, request

from engine.errors import BadRequest, RecordError
from engine.records.inbound import Inbound
from web.api import json_object, record_error

inbound = Blueprint("inbound", __name__, url_prefix="/api/v1/inbound")
inbound.register_error_handler(RecordError, record_error)
PUBLIC_PATH = re.compile(r"^/api/v1/inbound/[^/]+$")


def is_inbound_request() -> bool:
    """Whether the request is a webhook delivery, which needs a signature, not a token."""
    return request.method == "POST" and PUBLIC_PATH.match(request.path) is not None


def register_inbound(app: Flask) -> None:
    app.extensions["crm_inbound"] = Inbound(app.extensions["crm"].service)
    app.register_blueprint(inbound)


@inbound.post("/<source>")
def receive(source):
    receiver: Inbound = current_app.extensions["crm_inbound"]
    spec = receiver.source(source)
    raw = request.get_data(cache=True)  # over the body limit: 413 before anything is read
    receiver.verify(spec, request.headers, raw)
    if not raw:
        raise BadRequest("the body must be a JSON object")
    data = json_object(raw)  # standard JSON only, as everywhere in the API
    event_id = receiver.event_id(spec, request.headers, data)
    receipt = receiver.receive(spec, event_id, data)
    return jsonify({"data": {"source": spec.name, "event_id": event_id, **receipt.outcome,
                             "replayed": receipt.replayed}})

