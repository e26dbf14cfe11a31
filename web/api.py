"""The JSON API (API.md): a thin translation between HTTP and the record service.

No business rule lives here: every read and write goes through `RecordService`, and every
refusal it raises (a `RecordError`) becomes the one error shape with its status code.
"""

from __future__ import annotations

import json

from flask import Blueprint, g, jsonify, request

from engine.errors import BadRequest, NotFound, RecordError
from engine.records.listing import parse_query
from engine.records.values import to_json

api = Blueprint("api", __name__, url_prefix="/api/v1")
PUBLIC = {("POST", "/api/v1/auth/token")}


def ctx():
    from web.common import site  # one Site per request (see there)
    return site()


def error(status: int, code: str, message: str, fields: dict | None = None, **extra):
    body = {"error": {"code": code, "message": message, **extra}}
    if fields:
        body["error"]["fields"] = fields
    response = jsonify(body)
    response.status_code = status
    return response


@api.errorhandler(RecordError)
def record_error(exc: RecordError):
    return error(exc.status, exc.code, exc.message, exc.fields or None, **exc.extra)


def body() -> dict:
    """The request's JSON object; anything else is a 400/415 with the error shape."""
    if request.mimetype and not request.mimetype.endswith("json"):
        raise _Unsupported()
    if not request.content_length and not request.data:
        return {}
    return json_object(request.get_data())


def json_object(raw: bytes) -> dict:
    """A request body as a JSON object, or a 400 saying why it is not one."""
    try:  # standard JSON only: NaN and Infinity are not numbers a record can hold
        data = json.loads(raw, parse_constant=_no_constant)
    except ValueError:
        raise BadRequest("the body is not valid JSON") from None
    except RecursionError:  # [[[[... nested deeper than the parser goes
        raise BadRequest("the body is nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def _no_constant(name):
    raise ValueError(name)


class _Unsupported(RecordError):
    status, code = 415, "unsupported_media_type"

    def __init__(self):
        super().__init__("send JSON (Content-Type: application/json)")


def authenticate():
    """Registered on the app, not the blueprint, so that it runs before routing errors too:
    without a valid token every /api/v1/ call is 401, even to a path that does not exist."""
    if not request.path.startswith("/api/v1/") or (request.method, request.path) in PUBLIC:
        return None
    from web.inbound import is_inbound_request
    if is_inbound_request():  # webhooks prove their sender by signature (web/inbound.py)
        return None
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    caller = ctx().caller_for_token(token) if token else None
    if caller is None:
        return error(401, "unauthorized", "sign in: send Authorization: Bearer <token>")
    g.caller = caller
    g.token = token
    return None


# ---------------------------------------------------------------- authentication

@api.post("/auth/token")
def issue_token():
    data = body()
    username, password = str(data.get("username", "")), str(data.get("password", ""))
    from web.auth import sign_in_limits
    limits = sign_in_limits(username, request.remote_addr)
    wait = ctx().tokens.retry_after(limits)
    if wait:
        response = error(429, "rate_limited", "too many failed sign-ins; try again later")
        response.headers["Retry-After"] = str(wait)
        return response
    user_id = ctx().users.authenticate(username, password) if username else None
    if user_id is None:
        ctx().tokens.failed(limits)
        return error(401, "unauthorized", "wrong username or password")
    return jsonify({"token": ctx().tokens.issue(user_id)})


@api.delete("/auth/token")
def revoke_token():
    ctx().tokens.revoke(g.token)
    return "", 204


@api.get("/auth/tokens")
def own_tokens():
    """The caller's live API tokens and browser sessions (never the tokens themselves)."""
    from engine.records.values import to_json
    return jsonify({"data": [
        {**row, "created_at": to_json(None, row["created_at"]),
         "expires_at": to_json(None, row["expires_at"])}
        for row in ctx().tokens.of_user(g.caller.user_id, g.token)]})


@api.delete("/auth/tokens/<int:token_id>")
def revoke_own_token(token_id):
    if not ctx().tokens.revoke_own(g.caller.user_id, token_id):
        raise NotFound(f"you have no live token {token_id}")
    return "", 204


@api.get("/me")
def me():
    caller = g.caller
    return jsonify({"id": caller.user_id, "username": caller.username,
                    "display_name": caller.display_name, "roles": list(caller.roles),
                    "locale": caller.locale})


@api.get("/users")
def users():
    return jsonify({"data": ctx().active_users()})


# ---------------------------------------------------------------- records

def record_json(entity, record: dict, registry=None) -> dict:
    registry = registry or ctx().registry
    fields = entity.fields
    out = {}
    for key, value in record.items():
        if value is None or value.__class__ in _AS_IS:  # most values: JSON as they are
            out[key] = value
            continue
        field = fields.get(key)
        if field is not None and field.type == "lines":
            child = registry.entities[field.child_entity]
            out[key] = [record_json(child, line, registry) for line in value or []]
        else:
            out[key] = to_json(field, value)
    return out


_AS_IS = (str, int, bool)


def entity_for(name: str):
    entity = ctx().registry.entities.get(name)
    if entity is None or entity.parent:
        raise NotFound(f"no entity '{name}'")
    return entity


def version_sent(data: dict):
    """The version the client read: the body's, else If-Match ("*" names no version)."""
    version = data.pop("version", None)
    if version is not None:
        return version
    match = (request.headers.get("If-Match") or "").strip()
    if not match or match == "*":
        return None
    return match.removeprefix("W/").strip('"')


@api.get("/<entity>")
def list_records(entity):
    ent = entity_for(entity)
    page = ctx().service.list(g.caller, ent.name, parse_query(request.args.to_dict(flat=True)))
    registry = ctx().registry
    result = {"data": [record_json(ent, r, registry) for r in page.data],
              "next_cursor": page.next_cursor,
              "total": page.total, "refs": {k: {str(i): t for i, t in v.items()}
                                            for k, v in page.titles.items()}}
    if page.total_capped:
        result["total_capped"] = True
    return jsonify(result)


@api.post("/<entity>")
def create_record(entity):
    from web.files import record_body  # JSON, or multipart/form-data with files
    ent = entity_for(entity)
    record = ctx().service.create(g.caller, ent.name, record_body())
    return jsonify({"data": record_json(ent, record)}), 201


@api.get("/<entity>/<int:record_id>")
def get_record(entity, record_id):
    ent = entity_for(entity)
    return jsonify({"data": record_json(ent, ctx().service.get(g.caller, ent.name, record_id))})


@api.patch("/<entity>/<int:record_id>")
def update_record(entity, record_id):
    from web.files import record_body  # JSON, or multipart/form-data with files
    ent = entity_for(entity)
    data = record_body()
    version = version_sent(data)
    record = ctx().service.update(g.caller, ent.name, record_id, data, version)
    return jsonify({"data": record_json(ent, record)})


@api.delete("/<entity>/<int:record_id>")
def delete_record(entity, record_id):
    ent = entity_for(entity)
    data = body()
    ctx().service.delete(g.caller, ent.name, record_id, version_sent(data))
    return "", 204


@api.post("/<entity>/<int:record_id>/transitions/<name>")
def fire_transition(entity, record_id, name):
    ent = entity_for(entity)
    data = body()
    version = version_sent(data)
    record = ctx().service.transition(g.caller, ent.name, record_id, name, data, version)
    return jsonify({"data": record_json(ent, record)})


@api.get("/<entity>/<int:record_id>/transitions")
def list_transitions(entity, record_id):
    ent = entity_for(entity)
    return jsonify({"data": ctx().service.transitions(g.caller, ent.name, record_id)})


@api.get("/<entity>/<int:record_id>/history")
def history(entity, record_id):
    ent = entity_for(entity)
    limit = _limit()
    entries, cursor = ctx().service.history(g.caller, ent.name, record_id, limit=limit,
                                            cursor=request.args.get("cursor"))
    return jsonify({"data": entries, "next_cursor": cursor})


def _limit() -> int:
    raw = request.args.get("limit", "50")
    try:
        limit = int(raw)
    except ValueError:
        raise BadRequest("limit: must be a whole number",
                         {"limit": ["must be a whole number"]}) from None
    if not 1 <= limit <= 500:
        raise BadRequest("limit: must be between 1 and 500",
                         {"limit": ["must be between 1 and 500"]})
    return limit


@api.get("/reports/<name>")
def report(name):
    from engine.records.reports import run_report
    return jsonify(run_report(ctx().service, g.caller, name, request.args.to_dict(flat=True)))


@api.get("/dashboards/<name>")
def dashboard(name):
    from engine.records.dashboards import dashboard_data
    return jsonify({"data": dashboard_data(ctx().service, g.caller, name)})


# ---------------------------------------------------------------- notifications and meta

@api.get("/notifications")
def notifications():
    data, cursor = ctx().service.notifications(
        g.caller, limit=_limit(), unread_only=request.args.get("unread") == "true",
        cursor=request.args.get("cursor"))
    return jsonify({"data": data, "next_cursor": cursor})


@api.post("/notifications/read")
def read_notifications():
    data = body()
    ids = data.get("ids")
    if ids is not None and (not isinstance(ids, list) or
                            not all(isinstance(i, int) for i in ids)):
        raise BadRequest("ids: must be a list of notification ids",
                         {"ids": ["must be a list of notification ids"]})
    return jsonify({"marked": ctx().service.mark_read(g.caller, ids)})


@api.get("/meta")
def meta():
    from web.meta import registry_meta
    return jsonify(registry_meta(ctx(), g.caller))


@api.get("/meta/<entity>")
def meta_entity(entity):
    from web.meta import entity_meta
    return jsonify(entity_meta(ctx(), g.caller, entity_for(entity)))


@api.get("/openapi.json")
def openapi():
    from web.meta import openapi_document
    return jsonify(openapi_document(ctx()))
