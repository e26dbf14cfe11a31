"""The `mail:` section (docs/mail.md): check what it names and compile a MailConfig.

`match` and `subject_refs` may come from a pack.yaml or app.yaml (the highest layer that has
the key wins); addresses, limits, mailboxes and SMTP come from app.yaml only.
"""

from __future__ import annotations

from email.utils import parseaddr

from engine.check.context import CheckRun, Spot
from engine.config.layers import Layer
from engine.errors import did_you_mean
from engine.registry.mail import (DEFAULT_MAX_ATTACHMENT_MB, DEFAULT_MAX_MESSAGE_MB,
                                  AddressMatch, MailConfig, Mailbox, Smtp, SubjectRef)
from engine.registry.model import Entity

IMAP_PORTS = {"ssl": 993, "starttls": 143, "none": 143}
SMTP_PORTS = {"ssl": 465, "starttls": 587, "none": 25}
REF_TYPES = ("string", "autonumber")


def compile_mail(run: CheckRun, layers: list[Layer], entities: dict[str, Entity]):
    """Return the MailConfig of the layers, or None when no layer has a `mail:` section."""
    # a pack.yaml or app.yaml that failed the shape check is reported already, not compiled
    sections = [(layer, layer.identity) for layer in layers if layer.identity is not None
                and layer.identity not in layer.broken and isinstance(layer.identity.data, dict)
                and isinstance(layer.identity.data.get("mail"), dict)]
    if not sections:
        return None
    app = next((doc for layer, doc in sections if layer.kind == "site"), None)
    data = app.data["mail"] if app is not None else {}
    spot = Spot(app, ("mail",)) if app is not None else None

    def highest(key: str):
        for layer, doc in reversed(sections):
            if key in doc.data["mail"]:
                return doc.data["mail"][key], Spot(doc, ("mail", key))
        return None, None

    raw_match, match_spot = highest("match")
    if raw_match is None:
        matches = tuple(AddressMatch(e.name, f.name) for e in entities.values()
                        if not e.parent for f in e.fields.values() if f.type == "email")
    else:
        matches = tuple(m for m in (_match(run, match_spot / i, item, entities)
                                    for i, item in enumerate(raw_match)) if m is not None)
    raw_refs, refs_spot = highest("subject_refs")
    refs = tuple(r for r in (_subject_ref(run, refs_spot / i, item, entities)
                             for i, item in enumerate(raw_refs or ())) if r is not None)
    mailboxes = tuple(_mailbox(name, spec) for name, spec in (data.get("mailboxes") or {}).items())
    smtp = _smtp(run, spot / "smtp", data["smtp"]) if data.get("smtp") else None
    if data.get("notifications") and not data.get("smtp"):
        run.error(spot / "notifications", "mail-needs-smtp",
                  "mail notifications: true needs an smtp: server to send them with")
    own = {a.lower() for a in data.get("addresses") or () if not a.startswith("@")}
    own |= {m.user.lower() for m in mailboxes if "@" in m.user}
    if smtp is not None and "@" in parseaddr(smtp.sender)[1]:
        own.add(parseaddr(smtp.sender)[1].lower())
    domains = {a[1:].lower() for a in data.get("addresses") or () if a.startswith("@")}
    return MailConfig(
        matches=matches, subject_refs=refs, own_addresses=frozenset(own),
        own_domains=frozenset(domains),
        max_attachment_mb=data.get("max_attachment_mb", DEFAULT_MAX_ATTACHMENT_MB),
        max_message_mb=data.get("max_message_mb", DEFAULT_MAX_MESSAGE_MB),
        mailboxes=mailboxes, smtp=smtp, fetch_every_minutes=data.get("fetch_every", 5),
        notifications=bool(data.get("notifications", False)))


def _entity_field(run: CheckRun, spot: Spot, text: str, entities, what: str):
    """The (entity, field name) `entity.field` names, or None after reporting why not."""
    entity_name, field_name = text.split(".", 1)
    entity = entities.get(entity_name)
    if entity is None:
        run.error(spot, "unknown-entity", f"mail {what}: unknown entity '{entity_name}'"
                  f"{did_you_mean(entity_name, entities)}")
        return None
    if entity.parent:
        run.error(spot, "child-entity", f"mail {what}: '{entity_name}' is a child entity; "
                  f"link mail to its parent '{entity.parent}'")
        return None
    if field_name != "id" and field_name not in entity.fields:
        run.error(spot, "unknown-field", f"mail {what}: '{entity_name}' has no field "
                  f"'{field_name}'{did_you_mean(field_name, entity.fields)}")
        return None
    return entity, field_name


def _match(run: CheckRun, spot: Spot, item, entities) -> AddressMatch | None:
    text = item if isinstance(item, str) else item["field"]
    fspot = spot if isinstance(item, str) else spot / "field"
    found = _entity_field(run, fspot, text, entities, "match")
    if found is None:
        return None
    entity, field_name = found
    fld = entity.fields.get(field_name)
    if fld is None or fld.type != "email":
        kind = "the record id" if fld is None else f"of type {fld.type}"
        run.error(fspot, "mail-field-type", f"mail match: '{text}' is {kind}; addresses are "
                  "matched against fields of type email")
        return None
    follow = []
    for j, ref in enumerate(() if isinstance(item, str) else item.get("follow") or ()):
        target = entity.fields.get(ref)
        if target is None:
            run.error(spot / "follow" / j, "unknown-field", f"mail match: '{entity.name}' has "
                      f"no field '{ref}'{did_you_mean(ref, entity.fields)}")
        elif target.type != "reference" or target.to == "user":
            run.error(spot / "follow" / j, "mail-field-type", f"mail match: follow "
                      f"'{entity.name}.{ref}' is of type {target.type}; follow takes reference "
                      "fields to other records")
        else:
            follow.append((ref, target.to))
    return AddressMatch(entity.name, field_name, tuple(follow))


def _subject_ref(run: CheckRun, spot: Spot, text: str, entities) -> SubjectRef | None:
    found = _entity_field(run, spot, text, entities, "subject_refs")
    if found is None:
        return None
    entity, field_name = found
    fld = entity.fields.get(field_name)
    if fld is not None and (fld.type not in REF_TYPES or not fld.kind.stored):
        run.error(spot, "mail-field-type", f"mail subject_refs: '{text}' is of type "
                  f"{fld.type}; a subject reference is a string or autonumber field, or id")
        return None
    return SubjectRef(entity.name, field_name)


def _mailbox(name: str, spec: dict) -> Mailbox:
    tls = spec.get("tls", "ssl")
    return Mailbox(name, spec["host"], spec.get("port", IMAP_PORTS[tls]), tls, spec["user"],
                   spec["password_env"], tuple(spec.get("folders") or ("INBOX",)))


def _smtp(run: CheckRun, spot: Spot, spec: dict) -> Smtp | None:
    tls = spec.get("tls", "starttls")
    if spec.get("user") and not spec.get("password_env"):
        run.error(spot / "user", "missing-key", "mail smtp: a user needs password_env, the "
                  "environment variable holding its password")
        return None
    if "@" not in parseaddr(spec["from"])[1]:
        run.error(spot / "from", "bad-value", f"mail smtp: from '{spec['from']}' holds no "
                  "address; write 'Name <address>' or an address")
        return None
    return Smtp(spec["host"], spec.get("port", SMTP_PORTS[tls]), tls, spec.get("user"),
                spec.get("password_env"), spec["from"])
