"""JSON Schemas of the configuration language, one per document kind.

These schemas check the *shape* of each document (keys, value types); everything that needs
more than one document (references, expressions, layering) is checked afterwards in
`engine.check`. `crm schema` publishes `combined_schema()` for editors.
"""

from __future__ import annotations

import copy

from engine.config.mailschema import MAIL, MAIL_MODEL

IDENTIFIER = r"^[a-z][a-z0-9_]{0,62}$"
LOCALES = ("en", "zh")
FIELD_TYPES = (
    "string", "text", "integer", "decimal", "money", "percent", "boolean", "date", "datetime",
    "email", "phone", "url", "enum", "multi_enum", "reference", "lines", "rollup", "autonumber",
    "json", "file",
)
AGGREGATES = ("sum", "count", "min", "max", "avg")
CHARTS = ("table", "bar", "line", "pie", "funnel")
EVENTS = ("created", "updated", "deleted")

_ident = {"type": "string", "pattern": IDENTIFIER}
_ident_keys = {"pattern": IDENTIFIER}  # for propertyNames: map keys that are identifiers
_ident_list = {"type": "array", "items": _ident}
_str = {"type": "string"}
_str_list = {"type": "array", "items": _str}
_bool = {"type": "boolean"}
_expr = {"type": "string", "minLength": 1, "description": "a CEL expression"}
_scalar = {"type": ["string", "number", "boolean", "null"]}
_label = {
    "description": "a text, or a map of locale to text",
    "anyOf": [
        {"type": "string"},
        {"type": "object", "properties": {loc: {"type": "string"} for loc in LOCALES},
         "additionalProperties": False, "minProperties": 1},
    ],
}


def _obj(properties: dict, required: tuple = (), **extra) -> dict:
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    schema.update(extra)
    return schema


_option = {
    "description": "an option value, or {value, label}",
    "anyOf": [
        {"type": "string"},
        _obj({"value": {"type": "string"}, "label": _label}, ("value",)),
    ],
}

FIELD_KEYS = {
    "type": {"enum": list(FIELD_TYPES)},
    "label": _label, "help": _label, "placeholder": _label,
    "required": _bool, "default": {}, "unique": _bool, "index": _bool, "read_only": _bool,
    "hidden": _bool, "track": _bool,
    "visible_if": _expr, "required_if": _expr, "read_only_if": _expr, "compute": _expr,
    "renamed_from": _ident, "remove": _bool,
    "max_length": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
    "pattern": _str,
    "min": {"type": ["number", "string"]}, "max": {"type": ["number", "string"]},
    "precision": {"type": "integer", "minimum": 1, "maximum": 38},
    "scale": {"type": "integer", "minimum": 0, "maximum": 18},
    "currency": {"type": "string", "minLength": 1, "description": "money: an ISO 4217 code (CNY), or the name of a field holding one"},
    "rate_date": {**_ident, "description": "money with a currency field: the date field whose day picks the exchange rate (default created_at)"},
    "options": {"type": "array", "items": _option, "minItems": 1},
    "to": _ident,
    "on_delete": {"enum": ["restrict", "set_null", "cascade"]},
    "entity": _ident,
    "of": {"type": "string", "pattern": r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$"},
    "field": _ident,
    "agg": {"enum": list(AGGREGATES)},
    "where": _expr,
    "max_mb": {"type": "number", "exclusiveMinimum": 0, "maximum": 1024,
               "description": "file: the largest upload taken, in MB"},
    "accept": {"type": "array", "minItems": 1, "items": {"type": "string"},
               "description": "file: the content types taken, as sniffed from the bytes "
                              "(application/pdf, image/*, text/plain...)"},
    "lookup": _obj({
        "from": {**_ident, "description": "the entity whose records are searched"},
        "take": {**_ident, "description": "the field of the chosen record copied into this one"},
        "match": {"type": "object", "propertyNames": _ident_keys, "minProperties": 1,
                  "additionalProperties": {**_scalar, "description": "a CEL expression over "
                                           "this record (for a line, `parent` is its record)"},
                  "description": "candidate field -> expression: a candidate matches when "
                                 "its field is empty or equals the expression's value"},
        "valid": {**_ident_list, "minItems": 2, "maxItems": 2,
                  "description": "the candidate's [from, to] date fields, inclusive; an "
                                 "empty one is an open end"},
        "on": {**_expr, "description": "the date tested against `valid` (default today())"},
        "order": {**_str_list, "description": "tie-breaks after the most specific match: "
                                              "candidate fields, '-' for descending"},
        "where": {**_expr, "description": "a condition on the candidate (SQL subset)"},
    }, ("from", "take", "match"), description="fill the field, when it is left empty, from "
       "the best matching record of another entity (a price from a price list)"),
}
FIELD = _obj(FIELD_KEYS)

_entity_body = {
    "label": _label, "plural": _label, "description": _label, "module": _ident, "title": _ident,
    "parent": _ident,
    "fields": {"type": "object", "propertyNames": _ident_keys, "additionalProperties": FIELD},
    "indexes": {"type": "array", "items": _ident_list},
    "unique": {"type": "array", "items": _ident_list},
    "validations": {"type": "array", "items": _obj({"rule": _expr, "message": _label}, ("rule",))},
    "list": _obj({"columns": _ident_list, "filters": _ident_list, "sort": _str}),
    "search": _ident_list,
    "form": _obj({"sections": {"type": "array", "items": _obj(
        {"label": _label, "fields": _ident_list, "visible_if": _expr}, ("fields",))}}),
    "assignment": {"type": "array", "items": _obj({
        "when": _expr,
        "round_robin": _obj({"role": _ident, "users": _str_list}),
        "by_field": _obj({"field": _ident, "map": {"type": "object",
                                                     "additionalProperties": _str}},
                         ("field", "map")),
        "user": _str,
    }, minProperties=1)},
}
ENTITY = _obj({"entity": _ident, **_entity_body}, ("entity",))
EXTENSION = _obj({"extend": _ident, "replace": _bool, **_entity_body}, ("extend",))

_transition = _obj({
    "label": _label, "description": _label,
    "from": {"anyOf": [_str, _str_list]},
    "to": _ident,
    "roles": _ident_list,
    "require": _ident_list,
    "guard": _expr,
    "set": {"type": "object", "additionalProperties": _scalar},
    "create": {"type": "array", "items": _obj({
        "entity": _ident, "as": _ident,
        "values": {"type": "object", "additionalProperties": _scalar}}, ("entity",))},
    "forbid_self_approval": _bool,
}, ("from", "to"))
WORKFLOW = _obj({
    "workflow": _ident, "label": _label, "description": _label, "entity": _ident,
    "field": _ident, "initial": _ident,
    "states": {"type": "object", "minProperties": 1, "propertyNames": _ident_keys,
               "additionalProperties": _obj(
        {"label": _label, "description": _label, "final": _bool})},
    "transitions": {"type": "object", "propertyNames": _ident_keys,
                    "additionalProperties": _transition},
}, ("workflow", "entity", "field", "initial", "states", "transitions"))

_values = {"type": "object", "additionalProperties": _scalar}
_action = {
    "description": "one action: transition, set, notify, create or webhook",
    "anyOf": [
        _obj({"transition": _ident}, ("transition",)),
        _obj({"set": _values}, ("set",)),
        _obj({"notify": _obj({"role": _ident, "to": _ident, "title": _label,
                              "message": _label}, ("message",))}, ("notify",)),
        _obj({"create": _obj({"entity": _ident, "values": _values}, ("entity",))}, ("create",)),
        _obj({"webhook": _obj({"url": {"type": "string", "pattern": "^https?://"},
                               "secret_env": {"type": "string",
                                              "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}},
                              ("url", "secret_env"))}, ("webhook",)),
    ],
}
AUTOMATION = _obj({
    "automation": _ident, "label": _label, "description": _label, "entity": _ident,
    "when": _obj({
        "schedule": _str,
        "event": {"anyOf": [{"enum": list(EVENTS)}, _obj({"transition": _ident}, ("transition",))]},
        "transition": _ident,
    }, minProperties=1, maxProperties=1),
    "condition": _expr,
    "do": {"type": "array", "items": _action, "minItems": 1},
}, ("automation", "entity", "when", "do"))

_sharing_rule = _obj({
    "where": _expr,
    "through": _ident, "user": _ident,
    "match": {"type": "object", "propertyNames": _ident_keys, "additionalProperties": _ident,
              "minProperties": 1},
    "own": {"type": "boolean"},
}, minProperties=1, description="records shared by a rule: `where` (an expression over the "
   "record and `user`) and/or `through` an assignment entity whose `user` field is the acting "
   "user and whose `match` fields equal the record's; `own: true` adds the user's own records")
_access = {"anyOf": [{"type": "boolean"}, {"enum": ["all", "own"]}, _sharing_rule],
           "description": "all, own, true, false, or a sharing rule"}
ROLES = _obj({"roles": {"type": "object", "propertyNames": _ident_keys, "additionalProperties": _obj({
    "label": _label, "description": _label, "inherits": _ident_list,
    "entities": {"type": "object", "additionalProperties": _obj(
        {action: _access for action in ("read", "create", "update", "delete", "change_owner")})},
    "fields": {"type": "object", "additionalProperties": {"enum": ["read", "hidden"]}},
})}}, ("roles",))

_of = {"type": "string", "pattern": r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$",
       "description": "entity.reference_field: records of another entity that reference the "
                      "grouped records"}
_report_measure = _obj({
    "label": _label, "agg": {"enum": list(AGGREGATES)}, "field": _ident, "where": _expr,
    "expr": _expr, "format": {"enum": ["number", "money", "percent", "integer"]}, "of": _of})
# keys each analytic kind requires (the keys that apply to a kind are checked by the checker,
# which names the kind a stray key belongs to)
KIND_REQUIRED = {
    "rfm": ("customer", "date", "amount"),
    "purchase_cycle": ("customer", "date"),
    "basket": ("lines", "product"),
    "funnel": (),
    "forecast": ("date",),
}
REPORT_KINDS = tuple(KIND_REQUIRED)
REPORT = _obj({
    "report": _ident, "label": _label, "description": _label, "entity": _ident,
    "kind": {"enum": list(REPORT_KINDS),
             "description": "a built-in analysis instead of group_by and measures"},
    "where": _expr,
    "group_by": _str_list,
    "measures": {"type": "object", "minProperties": 1, "propertyNames": _ident_keys,
                 "additionalProperties": _report_measure},
    "sort": _str,
    "limit": {"type": "integer", "minimum": 1, "maximum": 10000},
    "chart": {"enum": list(CHARTS)},
    # rfm, purchase_cycle
    "customer": {**_ident, "description": "the reference field naming the customer"},
    "date": {**_ident, "description": "the date or datetime field of each record"},
    "amount": {**_ident, "description": "the number field summed"},
    # basket
    "lines": {**_ident, "description": "the lines field holding the basket's items"},
    "product": {**_ident, "description": "the line entity's reference field naming the product"},
    "min_support": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                    "description": "share of baskets a pair must appear in (default 0.01)"},
    # funnel
    "states": {**_ident_list, "minItems": 1,
               "description": "the workflow states that are the funnel's steps, in order"},
    # forecast
    "months": {"type": "integer", "minimum": 1, "maximum": 36,
               "description": "months projected, the current month first (default 6)"},
    "history": {"type": "integer", "minimum": 1, "maximum": 120,
                "description": "complete past months read (default 36)"},
}, ("report", "entity"), allOf=[
    {"if": {"not": {"required": ["kind"]}}, "then": {"required": ["measures"]}},
    *({"if": {"required": ["kind"], "properties": {"kind": {"const": kind}}},
       "then": {"required": list(keys)}} for kind, keys in KIND_REQUIRED.items() if keys),
])

DASHBOARD = _obj({
    "dashboard": _ident, "label": _label, "description": _label, "roles": _ident_list,
    "order": {"type": "integer"},
    "widgets": {"type": "array", "items": {
        "description": "a report widget or a metric widget",
        "anyOf": [
            _obj({"report": _ident, "label": _label, "width": {"enum": ["half", "full"]}},
                 ("report",)),
            _obj({"metric": _obj({"entity": _ident, "agg": {"enum": list(AGGREGATES)},
                                  "field": _ident, "where": _expr}, ("entity", "agg")),
                  "label": _label, "format": {"enum": ["number", "money", "percent", "integer"]},
                  "width": {"enum": ["half", "full"]}}, ("metric",)),
        ]}},
}, ("dashboard", "widgets"))

MODULES = _obj({"modules": {"type": "object", "propertyNames": _ident_keys,
                            "additionalProperties": _obj(
    {"label": _label, "order": {"type": "integer"}, "icon": _str})}}, ("modules",))

PACK = _obj({
    "pack": _ident, "label": _label, "description": _label,
    "version": {"type": "string", "pattern": r"^\d+\.\d+\.\d+"},
    "extends": _ident_list,
    "mail": MAIL_MODEL,
    "base_currency": {"type": "string", "pattern": "^[A-Z]{3}$",
                      "description": "the pack's default base currency (app.yaml overrides)"},
}, ("pack", "label"))

APP = _obj({
    "app": _ident, "label": _label, "description": _label, "pack": _ident,
    "locale": {"enum": list(LOCALES)}, "database": _str,
    "token_days": {"type": "integer", "minimum": 1, "maximum": 3650},
    "base_currency": {"type": "string", "pattern": "^[A-Z]{3}$",
                      "description": "the ISO 4217 code reports convert money into"},
    "max_body_mb": {"type": "number", "exclusiveMinimum": 0, "maximum": 1024},
    "files_dir": {"type": "string", "minLength": 1,
                  "description": "the folder uploaded files are stored in (relative to the "
                                 "site folder; default files/)"},
    "company": {"type": "object", "propertyNames": _ident_keys, "additionalProperties": _label,
                "description": "the company printed on documents: name, address, phone, "
                               "email, website, tax_id, bank... each a text or {en, zh}"},
    "webhook_allow": {"type": "array", "items": _str,
                      "description": "hosts or networks (CIDR) webhooks may reach although "
                                     "they are private, loopback or link-local"},
    "mail": MAIL,
}, ("app",))

_body_path = {"type": "string", "pattern": r"^(\$\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
              "description": "a value in the JSON body: a dotted path such as $.data.order_no "
                             "(the leading '$.' is optional; a number picks a list item)"}
_header_name = {"type": "string", "pattern": "^[A-Za-z0-9-]{1,100}$"}
INBOUND = _obj({
    "inbound": _ident, "label": _label, "description": _label,
    "secret_env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                   "description": "the environment variable holding the shared HMAC secret"},
    "signature": _obj({
        "header": {**_header_name, "description": "the header carrying the signature "
                                                  "(default X-Signature)"},
        "scheme": {"enum": ["hmac-sha256"], "description": "HMAC-SHA256 of the raw body, hex, "
                                                          "optionally prefixed 'sha256='"},
        "timestamp_header": {**_header_name, "description": "a header carrying the sending "
                             "time (Unix seconds); then '<timestamp>.<body>' is signed"},
        "tolerance": {"type": "integer", "minimum": 1, "maximum": 86400,
                      "description": "seconds the timestamp may differ from now (default 300)"},
    }),
    "event_id": {"description": "where the sender's event id is: a body path, or "
                                "{path: ...} or {header: ...}",
                 "anyOf": [_body_path, _obj({"path": _body_path}, ("path",)),
                           _obj({"header": _header_name}, ("header",))]},
    "entity": _ident,
    "match": {"type": "object", "propertyNames": _ident_keys, "additionalProperties": _body_path,
              "minProperties": 1, "description": "field -> body path: the record whose fields "
                                                 "equal these values"},
    "set": {"type": "object", "propertyNames": _ident_keys, "additionalProperties": _body_path,
            "description": "field -> body path: values to store"},
    "transition": {"description": "a transition to fire: its name, or {name, when: {path: value}}",
                   "anyOf": [_ident, _obj({"name": _ident, "when": {
                       "type": "object", "minProperties": 1,
                       "propertyNames": {"pattern": _body_path["pattern"]},
                       "additionalProperties": _scalar}}, ("name",))]},
    "create_if_missing": _bool,
}, ("inbound", "secret_env", "event_id", "entity", "match"))

PAPER_SIZES = ("a4", "a5", "letter", "legal")
DOCUMENT = _obj({
    "document": _ident, "label": _label, "description": _label, "entity": _ident,
    "template": {"type": "string", "minLength": 1, "pattern": r"^[^\\]+\.html?$",
                 "description": "the Jinja2 template: a path inside a documents/ folder, "
                                "such as templates/quotation.html"},
    "paper": {"enum": list(PAPER_SIZES)},
    "orientation": {"enum": ["portrait", "landscape"]},
    "roles": {**_ident_list, "minItems": 1,
              "description": "roles that may print it (default: whoever may read the record)"},
    "locale": {"enum": list(LOCALES), "description": "always print in this language"},
}, ("document", "entity", "template"))

SEED = _obj({
    "entity": _ident,
    "records": {"type": "array", "items": {"type": "object"}},
}, ("entity", "records"))

# document kind -> (discriminating key, schema)
KINDS: dict[str, tuple[str, dict]] = {
    "entity": ("entity", ENTITY), "extension": ("extend", EXTENSION),
    "workflow": ("workflow", WORKFLOW), "automation": ("automation", AUTOMATION),
    "roles": ("roles", ROLES), "report": ("report", REPORT), "dashboard": ("dashboard", DASHBOARD),
    "modules": ("modules", MODULES), "pack": ("pack", PACK), "app": ("app", APP),
    "seed": ("records", SEED), "inbound": ("inbound", INBOUND),
    "document": ("document", DOCUMENT),
}


def schema_for(kind: str) -> dict:
    """Return the draft-07 JSON Schema of one document kind."""
    schema = copy.deepcopy(KINDS[kind][1])
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    return schema


def combined_schema() -> dict:
    """Return one schema for every configuration file, choosing the kind by its first key."""
    definitions = {kind: copy.deepcopy(schema) for kind, (_, schema) in KINDS.items()}
    # Several kinds share keys (a workflow and a seed have `entity`, a dashboard has `roles`):
    # a file is of the first kind in this order whose key it has.
    order = ["workflow", "automation", "inbound", "document", "report", "dashboard", "app", "pack", "extension", "seed",
             "entity", "roles", "modules"]
    branches = []
    for i, kind in enumerate(order):
        condition = {"type": "object", "required": [KINDS[kind][0]]}
        earlier = [{"required": [KINDS[k][0]]} for k in order[:i]]
        if earlier:
            condition["not"] = {"anyOf": earlier}
        branches.append({"if": condition, "then": {"$ref": f"#/definitions/{kind}"}})
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://crm-engine.dev/schema/config.json",
        "title": "CRM engine configuration",
        "description": "Any file of a layer: pack.yaml, app.yaml, entities/, workflows/, "
                       "automations/, inbound/, reports/, dashboards/, documents/, roles.yaml, "
                       "modules.yaml, seed/.",
        "type": "object",
        "anyOf": [{"required": [key]} for key, _ in KINDS.values()],
        "allOf": branches,
        "definitions": definitions,
    }
