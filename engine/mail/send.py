"""Sending mail from a record over SMTP, and keeping it on the record's timeline.

The message is sent while the user waits, not queued: the person who wrote it learns at once
whether the server took it (a wrong address, a refused login), which an outbox retrying later
could only report to nobody. To lose nothing either way, it is stored first as `sending`
(linked to the record), then sent; on success it becomes `sent`; on a refusal the stored copy
is removed and the caller gets the server's reason (502, `mail_failed`): nothing is stored
as sent. A process that dies between the two steps leaves a `sending` message on the
timeline, which says honestly that delivery is unknown.
"""

from __future__ import annotations

import datetime as dt
import os
import smtplib
import ssl
import unicodedata
from email.message import EmailMessage
from email.utils import formataddr, format_datetime, make_msgid, parseaddr
from typing import Mapping

from engine.errors import Conflict, Forbidden, RecordError, ValidationFailed
from engine.mail.parse import parse
from engine.mail.store import MailStore
from engine.mail.timeline import MailReader
from engine.records.access import SYSTEM, Caller
from engine.records.uploads import Upload, check_upload
from engine.records.values import Invalid
from engine.registry.mail import Smtp
from engine.storage.database import write_transaction

UTC = dt.timezone.utc
TIMEOUT_SECONDS = 60
MAX_SUBJECT = 900
MAX_RECIPIENTS = 100


class MailSendFailed(RecordError):
    """The mail server did not take the message (or could not be reached)."""

    status, code = 502, "mail_failed"


def send_from_record(service, caller: Caller, entity_name: str, record_id, data: Mapping,
                     uploads: list[Upload] = (), environ: Mapping[str, str] = os.environ
                     ) -> dict:
    """Send a message from a record the caller may update; answer the stored message.

    `data`: `to` and `cc` (a list, or addresses separated by commas or semicolons),
    `subject`, `body` (plain text), optional `in_reply_to` (the id of a message on this
    record's timeline: the new one answers it)."""
    reader = MailReader(service)
    record = reader._record(caller, entity_name, record_id)  # NotFound unless readable
    config = reader.config
    entity = service.registry.entities[entity_name]
    whole = service.get(SYSTEM, entity_name, record["id"], with_lines=False)
    if not service.allows(caller, entity, whole, "update"):
        raise Forbidden("you may not change this record, so you may not send mail from it")
    if config.smtp is None:
        raise Conflict("sending mail is not configured (app.yaml mail.smtp)")
    errors: dict[str, list[str]] = {}
    to = _recipients(data.get("to"), "to", errors, required=True)
    cc = _recipients(data.get("cc"), "cc", errors)
    if len(to) + len(cc) > MAX_RECIPIENTS:
        errors.setdefault("to", []).append(f"at most {MAX_RECIPIENTS} recipients")
    subject = data.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        errors["subject"] = ["is required"]
    elif len(subject) > MAX_SUBJECT or _breaks_line(subject):
        errors["subject"] = [f"must be one line of at most {MAX_SUBJECT} characters, "
                             "without line breaks or control characters"]
    body = data.get("body") or ""
    if not isinstance(body, str):
        errors["body"] = ["must be text"]
    files = []
    for upload in uploads:
        try:
            files.append(check_upload(upload, config.max_attachment_mb))
        except Invalid as exc:
            errors.setdefault("attachments", []).append(
                f"{upload.name or 'file'}: {exc.message.render(caller.locale)}")
    answered = _answered(reader, caller, entity_name, record["id"], data.get("in_reply_to"),
                         errors)
    if errors:
        raise ValidationFailed(f"{len(errors)} fields are invalid", errors)

    # the token comes from the record as the caller may read it: a field hidden from them
    # must not reach the subject they are shown (nor the message they send)
    hidden = service.access(caller, entity).hidden
    subject = _with_token(config, entity_name, record, hidden, subject.strip())
    message = _compose(config.smtp, to, cc, subject, body, files, answered)
    store = MailStore(service)
    raw = message.as_bytes()
    mail = parse(raw, config.max_attachment_mb)
    with write_transaction(service.engine) as conn:
        stored = store.store(conn, mail, source="smtp", direction="out", status="sending",
                             created_by=caller.user_id, sent_from=(entity_name, record["id"]))
    try:
        partial = deliver_smtp(config.smtp, message, [a for _, a in to + cc], environ)
    except MailSendFailed:
        with write_transaction(service.engine) as conn:
            _forget(store, conn, stored.id)
        raise
    with write_transaction(service.engine) as conn:
        conn.execute(store.messages.update().where(store.messages.c.id == stored.id)
                     .values(status="sent", problems=mail.problems + ([partial] if partial
                                                                      else [])))
    return reader.message(caller, stored.id)


def _recipients(raw, name: str, errors: dict, required: bool = False) -> list[tuple[str, str]]:
    if raw is None or raw == "" or raw == []:
        if required:
            errors[name] = ["is required"]
        return []
    items = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(i, str) for i in items):
        errors[name] = ["must be addresses"]
        return []
    if any(_breaks_line(i) for i in items):
        # before parseaddr, which reads "Name\r\nBcc: x" leniently into an address
        errors[name] = ["must not contain line breaks or control characters"]
        return []
    text = ",".join(items).replace(";", ",")
    found, bad = [], []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        display, address = parseaddr(part)
        local, _, domain = address.rpartition("@")
        if not local or "." not in domain or any(c.isspace() for c in address):
            bad.append(part)
        else:
            found.append((display, address))
    if bad:
        errors[name] = [f"not an email address: {', '.join(bad)}"]
    elif required and not found:
        errors[name] = ["is required"]
    return found


def _answered(reader: MailReader, caller: Caller, entity_name: str, record_id: int, raw,
              errors: dict) -> dict | None:
    """The message on this record's timeline that the new one answers (`in_reply_to`)."""
    if raw in (None, ""):
        return None
    try:
        message = reader.message(caller, raw)
    except Exception:  # noqa: BLE001 - any unknown id is the same mistake to the user
        message = None
    if message is None or not any(link["entity"] == entity_name and link["id"] == record_id
                                  for link in message["links"]):
        errors["in_reply_to"] = ["is not a message of this record"]
        return None
    return message


def _with_token(config, entity_name: str, record: dict, hidden, subject: str) -> str:
    """Add the record's subject reference (`[Q-7]`, `[opportunity#12]`), so that answers
    find their way back to it. `record` is as the sender may read it: a reference whose field
    is hidden from them (or empty, or not one clean line) gives way to the next one."""
    for ref in config.subject_refs:
        if ref.entity != entity_name:
            continue
        if ref.field == "id":
            value = f"{entity_name}#{record['id']}"
        elif ref.field in hidden:
            continue
        else:
            value = record.get(ref.field)
        if not isinstance(value, str):
            value = "" if value is None else str(value)
        if value.strip() and not _breaks_line(value) and f"[{value}]" not in subject:
            return f"{subject} [{value}]"
    return subject


def _breaks_line(text: str) -> bool:
    """Whether `text` holds a line break or a control character of any kind (CR, LF, NUL,
    VT, FF, NEL U+0085, LINE/PARAGRAPH SEPARATOR...): a header must be one line."""
    return len(text.splitlines()) > 1 or any(
        unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text)


def _compose(smtp: Smtp, to, cc, subject: str, body: str, files, answered) -> EmailMessage:
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = ", ".join(formataddr(p) for p in to)
    if cc:
        message["Cc"] = ", ".join(formataddr(p) for p in cc)
    message["Subject"] = subject
    message["Date"] = format_datetime(dt.datetime.now(UTC))
    domain = parseaddr(smtp.sender)[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    if answered is not None:
        message["In-Reply-To"] = answered["message_id"]
        message["References"] = " ".join(answered["references"] + [answered["message_id"]])
    message.set_content(body or "")
    for pending in files:
        main, _, sub = pending.content_type.partition("/")
        message.add_attachment(pending.data, maintype=main or "application",
                               subtype=sub or "octet-stream", filename=pending.name)
    return message


def deliver_smtp(smtp: Smtp, message: EmailMessage, recipients: list[str],
             environ) -> str | None:
    password = None
    if smtp.user:
        password = environ.get(smtp.password_env or "")
        if not password:
            raise MailSendFailed(f"the mail server password is not set (environment variable "
                                 f"{smtp.password_env})")
    context = ssl.create_default_context()
    try:
        if smtp.tls == "ssl":
            client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=TIMEOUT_SECONDS,
                                      context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT_SECONDS)
        with client:
            if smtp.tls == "starttls":
                client.starttls(context=context)
            if smtp.user:
                client.login(smtp.user, password)
            refused = client.send_message(message, to_addrs=recipients)
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailSendFailed("the mail server refused every recipient: " +
                             _refusals(exc.recipients)) from None
    except smtplib.SMTPResponseException as exc:
        reason = exc.smtp_error.decode("utf-8", "replace") if isinstance(
            exc.smtp_error, bytes) else str(exc.smtp_error)
        raise MailSendFailed(f"the mail server refused the message ({exc.smtp_code} "
                             f"{reason})") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise MailSendFailed(f"the mail server {smtp.host}:{smtp.port} could not be reached "
                             f"({exc.__class__.__name__}: {exc})") from None
    # some recipients taken, some refused: the message is sent; the refusals are noted on it
    return f"the mail server refused some recipients: {_refusals(refused)}" if refused else None


def _refusals(recipients: dict) -> str:
    parts = []
    for address, (code, reason) in recipients.items():
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        parts.append(f"{address} ({code} {text})")
    return "; ".join(parts)


def _forget(store: MailStore, conn, message_id: int) -> None:
    """Remove a message that was not sent (SQLite keeps no foreign keys: rows go by hand;
    its attachment files become orphans that `crm sweep-files` removes)."""
    conn.execute(store.links.delete().where(store.links.c.message_id == message_id))
    conn.execute(store.attachments.delete().where(store.attachments.c.message_id == message_id))
    conn.execute(store.messages.delete().where(store.messages.c.id == message_id))

