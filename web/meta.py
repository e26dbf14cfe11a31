"""Describing the loaded configuration to clients: /meta, /meta/<entity>, /openapi.json."""

from __future__ import annotations

from engine.records.currency import currency_meta
from engine.registry.model import Entity


def _can(ctx, caller, entity: Entity) -> dict:
    access = ctx.service.access(caller, entity)
    return {"read": access.read is not None, "create": access.create is not None,
            "update": access.update is not None, "delete": access.delete is not None}


def registry_meta(ctx, caller) -> dict:
    loc = caller.locale
    registry = ctx.registry
    readable = [e for e in registry.entities.values()
                if not e.parent and ctx.service.access(caller, e).read is not None]
    names = {e.name for e in readable}
    return {
        "entities": [{"name": e.name, "label": e.label.get(loc), "plural": e.plural.get(loc),
                      "module": e.module} for e in readable],
        "workflows": [{"name": w.name, "entity": w.entity, "field": w.field,
                       "states": [{"name": s.name, "label": s.label.get(loc), "final": s.final}
                                  for s in w.states.values()]}
                      for w in registry.workflows.values() if w.entity in names],
        "roles": [{"name": r.name, "label": r.label.get(loc)} for r in registry.roles.values()],
        "reports": [{"name": r.name, "label": r.label.get(loc), "entity": r.entity,
                     "chart": r.chart} for r in registry.reports.values() if r.entity in names],
        "dashboards": [{"name": d.name, "label": d.label.get(loc)}
                       for d in registry.dashboards.values()
                       if caller.is_admin or set(d.roles) & set(caller.roles)],
        "modules": [{"name": m.name, "label": m.label.get(loc), "order": m.order}
                    for m in registry.modules.values()],
        "base_currency": registry.base_currency,
    }


def field_meta(ctx, caller, entity: Entity, access) -> list[dict]:
    loc = caller.locale
    workflow = ctx.registry.workflow_by_entity.get(entity.name)
    fields = []
    for name, f in entity.fields.items():
        if name in access.hidden:
            continue
        item = {"name": name, "type": f.type, "label": f.label.get(loc), "required": f.required,
                "read_only": not f.writable or name in access.read_only or
                (workflow is not None and name == workflow.field),
                "options": [{"value": o.value, "label": o.label.get(loc)} for o in f.options]
                if f.options else None,
                "to": f.to, "help": f.help.get(loc) if f.help else None}
        if f.type == "lines":
            child = ctx.registry.entities[f.child_entity]
            item["entity"] = child.name
            item["fields"] = field_meta(ctx, caller, child, ctx.service.access(caller, child))
        if f.currency is not None:  # which currency its amounts are in (docs/language.md)
            item.update(currency_meta(ctx.registry, entity, f))
        if f.type == "file":  # what an upload must be (docs/files.md)
            item["max_mb"] = f.max_mb
            item["accept"] = list(f.accept)
        for key in ("max_length", "min", "max", "precision", "scale", "pattern"):
            value = getattr(f, key)
            if value is not None and not hasattr(value, "evaluate"):
                item[key] = value if isinstance(value, (int, float, str)) else str(value)
        for key in ("visible_if", "required_if", "read_only_if", "compute"):
            expression = getattr(f, key)
            if expression is not None:
                item[key] = expression.source
        fields.append(item)
    return fields


def entity_meta(ctx, caller, entity: Entity) -> dict:
    loc = caller.locale
    access = ctx.service.access(caller, entity)
    if access.read is None:
        from engine.errors import NotFound
        raise NotFound(f"no entity '{entity.name}'")
    workflow = ctx.registry.workflow_by_entity.get(entity.name)
    return {
        "name": entity.name, "label": entity.label.get(loc), "plural": entity.plural.get(loc),
        "title": entity.title, "module": entity.module,
        "fields": field_meta(ctx, caller, entity, access),
        "list": {"columns": [c for c in entity.list_columns if c not in access.hidden],
                 "filters": list(entity.list_filters),
                 "sort": [("-" if d else "") + f for f, d in entity.list_sort]},
        "search": list(entity.search_fields),
        "form": [{"label": s.label.get(loc), "fields": [f for f in s.fields
                                                         if f not in access.hidden],
                  "visible_if": s.visible_if.source if s.visible_if else None}
                 for s in entity.form_sections],
        "workflow": None if workflow is None else {
            "name": workflow.name, "field": workflow.field, "initial": workflow.initial,
            "states": [{"name": s.name, "label": s.label.get(loc), "final": s.final}
                       for s in workflow.states.values()],
            "transitions": [{"name": t.name, "label": t.label.get(loc), "from": list(t.sources),
                             "to": t.target, "roles": list(t.roles),
                             "require": list(t.require)} for t in workflow.transitions.values()]},
        "can": _can(ctx, caller, entity),
    }


_JSON_TYPES = {"integer": {"type": "integer"}, "boolean": {"type": "boolean"},
               "date": {"type": "string", "format": "date"},
               "datetime": {"type": "string", "format": "date-time"},
               "decimal": {"type": "string"}, "money": {"type": "string"},
               "percent": {"type": "string"}, "rollup": {"type": "string"},
               "reference": {"type": "integer"}, "json": {},
               "multi_enum": {"type": "array", "items": {"type": "string"}},
               "file": {"type": "object", "nullable": True, "properties": {
                   "name": {"type": "string"}, "size": {"type": "integer"},
                   "content_type": {"type": "string"}, "sha256": {"type": "string"}}}}


def _schema_of(ctx, entity: Entity) -> dict:
    properties = {"id": {"type": "integer"}, "version": {"type": "integer"},
                  "created_at": {"type": "string", "format": "date-time"},
                  "updated_at": {"type": "string", "format": "date-time"},
                  "created_by": {"type": "integer", "nullable": True},
                  "updated_by": {"type": "integer", "nullable": True},
                  "owner": {"type": "integer", "nullable": True}}
    for name, f in entity.fields.items():
        if f.type == "lines":
            properties[name] = {"type": "array", "items": {
                "$ref": f"#/components/schemas/{f.child_entity}"}}
            continue
        schema = dict(_JSON_TYPES.get(f.type, {"type": "string"}))
        if f.options:
            schema["enum"] = list(f.option_values) if f.type == "enum" else None
            if schema["enum"] is None:
                del schema["enum"]
        schema["nullable"] = True
        schema["description"] = f.label.get("en")
        properties[name] = schema
    return {"type": "object", "properties": properties}


def openapi_document(ctx) -> dict:
    """An OpenAPI 3.0 description of this configuration's API."""
    error = {"$ref": "#/components/responses/Error"}
    paths = {
        "/auth/token": {"post": {"summary": "Get a bearer token", "security": [],
                                 "requestBody": {"required": True, "content": {
                                     "application/json": {"schema": {
                                         "type": "object", "required": ["username", "password"],
                                         "properties": {"username": {"type": "string"},
                                                        "password": {"type": "string"}}}}}},
                                 "responses": {"200": {"description": "a token"},
                                               "401": error, "429": error}},
                        "delete": {"summary": "Revoke the token used",
                                   "responses": {"204": {"description": "revoked"}}}},
        "/me": {"get": {"summary": "The caller", "responses": {"200": {"description": "user"}}}},
        "/users": {"get": {"summary": "Active users",
                           "responses": {"200": {"description": "users"}}}},
        "/notifications": {"get": {"summary": "The caller's notifications",
                                   "responses": {"200": {"description": "notifications"}}}},
        "/meta": {"get": {"summary": "The configuration",
                          "responses": {"200": {"description": "entities, workflows..."}}}},
        # exchange rates for money in several currencies (docs/reports.md)
        "/exchange-rates": {
            "get": {"summary": "Exchange rates for the base currency, newest first",
                    "responses": {"200": {"description": "rates"}, "400": error}},
            "put": {"summary": "Add or replace rates (admins; all or none)",
                    "responses": {"200": {"description": "rates written"}, "403": error,
                                  "422": error}}},
        "/exchange-rates/{currency}": {
            "parameters": [{"name": "currency", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "get": {"summary": "The rate on a day (?on=YYYY-MM-DD, default today)",
                    "responses": {"200": {"description": "rate"}, "404": error}}},
        "/exchange-rates/{currency}/{day}": {
            "parameters": [{"name": "currency", "in": "path", "required": True,
                            "schema": {"type": "string"}},
                           {"name": "day", "in": "path", "required": True,
                            "schema": {"type": "string", "format": "date"}}],
            "delete": {"summary": "Remove one rate (admins)",
                       "responses": {"204": {"description": "removed"}, "403": error,
                                     "404": error}}},
        "/meta/{entity}": {"parameters": [{"name": "entity", "in": "path", "required": True,
                                           "schema": {"type": "string"}}],
                           "get": {"summary": "One entity's compiled definition",
                                   "responses": {"200": {"description": "the entity"},
                                                 "404": error}}},
        "/reports/{report}": {"parameters": [{"name": "report", "in": "path", "required": True,
                                              "schema": {"type": "string"}}],
                              "get": {"summary": "Run a report",
                                      "responses": {"200": {"description": "columns and rows"},
                                                    "403": error, "404": error}}},
        "/dashboards/{dashboard}": {
            "parameters": [{"name": "dashboard", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "get": {"summary": "A dashboard the caller may see, with every widget's data",
                    "responses": {"200": {"description": "label and widgets"},
                                  "404": error}}},
        "/notifications/read": {"post": {"summary": "Mark notifications read",
                                         "responses": {"200": {"description": "marked"}}}},
        "/openapi.json": {"get": {"summary": "This document",
                                  "responses": {"200": {"description": "OpenAPI 3"}}}},
    }
    schemas = {"Error": {"type": "object", "properties": {"error": {
        "type": "object", "properties": {"code": {"type": "string"},
                                         "message": {"type": "string"},
                                         "fields": {"type": "object"}}}}}}
    for entity in ctx.registry.entities.values():
        schemas[entity.name] = _schema_of(ctx, entity)
        if entity.parent:
            continue
        ref = {"$ref": f"#/components/schemas/{entity.name}"}
        one = {"200": {"description": "the record", "content": {"application/json": {
            "schema": {"type": "object", "properties": {"data": ref}}}}},
            "404": error}
        id_param = [{"name": "id", "in": "path", "required": True,
                     "schema": {"type": "integer"}}]
        paths[f"/{entity.name}"] = {
            "get": {"summary": f"List {entity.plural.get('en')}", "parameters": [
                {"name": p, "in": "query", "required": False, "schema": {"type": "string"}}
                for p in ("q", "sort", "limit", "cursor", "fields", "count")],
                "responses": {"200": {"description": "a page of records"}, "400": error}},
            "post": {"summary": f"Create a {entity.label.get('en')}", "requestBody": {
                "content": {"application/json": {"schema": ref}}},
                "responses": {"201": one["200"], "403": error, "422": error}}}
        paths[f"/{entity.name}/{{id}}"] = {
            "parameters": id_param,
            "get": {"summary": "Read one", "responses": one},
            "patch": {"summary": "Change fields (send version)", "requestBody": {
                "content": {"application/json": {"schema": ref}}},
                "responses": {**one, "409": error, "422": error, "428": error}},
            "delete": {"summary": "Soft delete (send version)",
                       "responses": {"204": {"description": "deleted"}, "409": error,
                                     "428": error}}}
        paths[f"/{entity.name}/{{id}}/history"] = {
            "parameters": id_param,
            "get": {"summary": "Audit trail", "responses": {"200": {"description": "entries"}}}}
        file_answer = {"200": {"description": "the file, as a download", "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            "404": error}
        paths[f"/{entity.name}/{{id}}/attachments"] = {
            "parameters": id_param,
            "get": {"summary": "Attachments", "responses": {"200": {"description": "list"}}},
            "post": {"summary": "Attach a file (multipart part 'file', or JSON "
                                "{name, content_base64})", "requestBody": {"content": {
                "multipart/form-data": {"schema": {"type": "object", "properties": {
                    "file": {"type": "string", "format": "binary"}}}},
                "application/json": {"schema": {"type": "object", "properties": {
                    "name": {"type": "string"}, "content_base64": {"type": "string"}}}}}},
                "responses": {"201": {"description": "attached"}, "403": error,
                              "413": error, "422": error}}}
        paths[f"/{entity.name}/{{id}}/attachments/{{attachment}}"] = {
            "parameters": id_param + [{"name": "attachment", "in": "path", "required": True,
                                       "schema": {"type": "integer"}}],
            "get": {"summary": "Download an attachment", "responses": file_answer},
            "delete": {"summary": "Delete an attachment", "responses": {
                "204": {"description": "deleted"}, "403": error, "404": error}}}
        for fname in (n for n, f in entity.fields.items() if f.type == "file"):
            paths[f"/{entity.name}/{{id}}/files/{fname}"] = {
                "parameters": id_param,
                "get": {"summary": f"Download the file of {fname}", "responses": file_answer}}
        if any(d.entity == entity.name for d in ctx.registry.documents.values()):
            paths[f"/{entity.name}/{{id}}/documents"] = {  # web/documents.py
                "parameters": id_param,
                "get": {"summary": "Printable documents the caller may print",
                        "responses": {"200": {"description": "documents"}, "404": error}}}
            paths[f"/{entity.name}/{{id}}/documents/{{name}}"] = {
                "parameters": id_param + [
                    {"name": "name", "in": "path", "required": True,
                     "schema": {"type": "string"}},
                    {"name": "format", "in": "query", "required": False,
                     "schema": {"type": "string", "enum": ["pdf", "html"], "default": "pdf"}},
                    {"name": "locale", "in": "query", "required": False,
                     "schema": {"type": "string", "enum": ["en", "zh"]}}],
                "get": {"summary": "Print a document of the record (audited)", "responses": {
                    "200": {"description": "the document", "content": {
                        "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                        "text/html": {"schema": {"type": "string"}}}},
                    "400": error, "403": error, "404": error, "422": error}}}
        if entity.workflow:
            paths[f"/{entity.name}/{{id}}/transitions"] = {
                "parameters": id_param,
                "get": {"summary": "Transitions available now",
                        "responses": {"200": {"description": "transitions"}}}}
            paths[f"/{entity.name}/{{id}}/transitions/{{name}}"] = {
                "parameters": id_param + [{"name": "name", "in": "path", "required": True,
                                           "schema": {"type": "string"}}],
                "post": {"summary": "Fire a transition", "responses": {
                    **one, "403": error, "409": error, "422": error}}}
    for source in ctx.registry.inbound.values():
        paths[f"/inbound/{source.name}"] = {"post": {
            "summary": f"Inbound webhook: {source.label.get('en')} ({source.entity})",
            "description": "Authenticated by an HMAC-SHA256 signature of the raw body, not by "
                           "a token; a repeated event id returns the first outcome.",
            "security": [],
            "parameters": [{"name": h, "in": "header", "required": True,
                            "schema": {"type": "string"}}
                           for h in (source.signature_header, source.timestamp_header,
                                     source.event_id_header) if h],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"type": "object"}}}},
            "responses": {"200": {"description": "applied, or a repeated event"},
                          "400": error, "401": error, "404": error, "409": error,
                          "413": error, "422": error}}}
    app = ctx.registry.app
    return {
        "openapi": "3.0.3",
        "info": {"title": app.label.get("en") if app else "CRM", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                       "responses": {"Error": {"description": "an error", "content": {
                           "application/json": {"schema": {
                               "$ref": "#/components/schemas/Error"}}}}}},
    }
