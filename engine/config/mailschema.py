"""JSON Schema of the `mail:` section of app.yaml (and of the model part a pack.yaml may carry).

Kept apart from engine/config/schema.py, which includes these in APP and PACK; see docs/mail.md.
"""

from __future__ import annotations

IDENTIFIER = r"^[a-z][a-z0-9_]{0,62}$"


def _obj(properties: dict, required: tuple = (), **extra) -> dict:
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    schema.update(extra)
    return schema


_ident_list = {"type": "array", "items": {"type": "string", "pattern": IDENTIFIER}}
_env_name = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
             "description": "the name of an environment variable (never the secret itself)"}
_tls = {"enum": ["ssl", "starttls", "none"],
        "description": "ssl: TLS from the start; starttls: upgrade; none: clear text "
                       "(loopback and tests only)"}
_port = {"type": "integer", "minimum": 1, "maximum": 65535}
_text = {"type": "string", "minLength": 1}
_entity_field = {"type": "string", "pattern": r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$",
                 "description": "entity.field"}

_MODEL = {
    "match": {"type": "array", "items": {"anyOf": [_entity_field, _obj(
        {"field": _entity_field, "follow": {**_ident_list, "description": "reference fields "
                                            "of the matched record whose records are linked "
                                            "too"}}, ("field",))]},
        "description": "the email fields whose records mail is linked to by address"},
    "subject_refs": {"type": "array", "items": _entity_field,
                     "description": "entity.field (or entity.id) whose value in [brackets] in "
                                    "a subject links the message to that record"},
}
MAIL_MODEL = _obj(_MODEL, description="the model's part of mail: how messages are linked to "
                                      "records (docs/mail.md)")
MAIL = _obj({
    **_MODEL,
    "addresses": {"type": "array", "items": {"type": "string", "pattern": r"^[^@\s]*@[^@\s]+$"},
                  "description": "our own addresses, or whole domains as @domain"},
    "max_attachment_mb": {"type": "number", "exclusiveMinimum": 0, "maximum": 1024},
    "max_message_mb": {"type": "number", "exclusiveMinimum": 0, "maximum": 1024},
    "mailboxes": {"type": "object", "propertyNames": {"pattern": IDENTIFIER},
                  "additionalProperties": _obj({
                      "host": _text, "port": _port, "tls": _tls, "user": _text,
                      "password_env": _env_name,
                      "folders": {"type": "array", "minItems": 1, "items": _text},
                  }, ("host", "user", "password_env"))},
    "smtp": _obj({"host": _text, "port": _port, "tls": _tls, "user": _text,
                  "password_env": _env_name, "from": {"type": "string", "minLength": 3}},
                 ("host", "from")),
    "fetch_every": {"type": "integer", "minimum": 0, "maximum": 1440,
                    "description": "minutes between two fetches of the mailboxes by the "
                                   "background workers (default 5; 0: only `crm mail fetch`)"},
    "notifications": {"type": "boolean",
                      "description": "also mail each in-app notification to its user's "
                                     "address, in the background (needs smtp; default false)"},
}, description="mail: IMAP mailboxes, SMTP, and how messages are linked to records "
               "(docs/mail.md)")
