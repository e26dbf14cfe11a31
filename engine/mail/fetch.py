"""`crm mail fetch`: read new mail from the configured IMAP mailboxes, with UID checkpoints.

Per mailbox and folder the engine keeps (UIDVALIDITY, last UID stored). A fetch asks the server
only for UIDs above the checkpoint, reads each message without marking it read
(`BODY.PEEK[]`), and stores it together with the advanced checkpoint in one transaction, so a
fetch stopped at any point resumes where it stopped: nothing read twice, nothing skipped. When
the server's UIDVALIDITY changes (the folder was rebuilt), the UIDs mean other messages: the
folder is read again from the start, and Message-IDs already stored are recognised and skipped.
"""

from __future__ import annotations

import imaplib
import os
import re
import ssl
from dataclasses import dataclass, field
from typing import Mapping

from engine.mail.parse import NotAnEmail, parse
from engine.mail.store import MailNotConfigured, MailStore
from engine.registry.mail import Mailbox
from engine.storage.database import write_transaction

TIMEOUT_SECONDS = 60
_UID = re.compile(rb"UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")


@dataclass
class FolderResult:
    """What one fetch of one folder did; `error` stops that folder (the rest go on)."""

    mailbox: str
    folder: str
    stored: int = 0
    duplicates: int = 0
    failures: list[str] = field(default_factory=list)
    rescanned: bool = False
    error: str | None = None

    def line(self) -> str:
        where = f"{self.mailbox}/{self.folder}"
        if self.error and not (self.stored or self.duplicates or self.failures):
            return f"{where}: {self.error}"
        text = f"{where}: {self.stored} new, {self.duplicates} already stored, " \
               f"{len(self.failures)} failed"
        if self.rescanned:
            text += " (UIDVALIDITY changed: folder read again)"
        return text + (f"; stopped: {self.error}" if self.error else "")


def fetch(service, mailbox: str | None = None,
          environ: Mapping[str, str] = os.environ) -> list[FolderResult]:
    """Fetch every configured mailbox (or only `mailbox`); return one result per folder."""
    store = MailStore(service)
    boxes = store.config.mailboxes
    if mailbox is not None:
        box = store.config.mailbox(mailbox)
        if box is None:
            known = ", ".join(m.name for m in boxes) or "none configured"
            raise MailNotConfigured(f"no mailbox '{mailbox}' in app.yaml mail.mailboxes "
                                    f"({known})")
        boxes = (box,)
    if not boxes:
        raise MailNotConfigured("no mailboxes configured (app.yaml mail.mailboxes)")
    results = []
    for box in boxes:
        results.extend(_fetch_mailbox(store, box, environ))
    return results


def connect(box: Mailbox, password: str) -> imaplib.IMAP4:
    """Open and log in to an IMAP server as the mailbox says (TLS, STARTTLS or plain)."""
    context = ssl.create_default_context()
    if box.tls == "ssl":
        client = imaplib.IMAP4_SSL(box.host, box.port, ssl_context=context,
                                   timeout=TIMEOUT_SECONDS)
    else:
        client = imaplib.IMAP4(box.host, box.port, timeout=TIMEOUT_SECONDS)
        if box.tls == "starttls":
            client.starttls(context)
    client.login(box.user, password)
    return client


def _fetch_mailbox(store: MailStore, box: Mailbox, environ) -> list[FolderResult]:
    password = environ.get(box.password_env)
    if not password:
        error = f"environment variable {box.password_env} (the password) is not set"
        return [FolderResult(box.name, f, error=error) for f in box.folders]
    try:
        client = connect(box, password)
    except (imaplib.IMAP4.error, OSError) as exc:
        error = f"cannot sign in to {box.host}:{box.port}: {_reason(exc)}"
        return [FolderResult(box.name, f, error=error) for f in box.folders]
    try:
        return [_fetch_folder(store, client, box, folder) for folder in box.folders]
    finally:
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


def _fetch_folder(store: MailStore, client: imaplib.IMAP4, box: Mailbox,
                  folder: str) -> FolderResult:
    result = FolderResult(box.name, folder)
    try:
        status, _ = client.select(quote_folder(folder), readonly=True)
        if status != "OK":
            result.error = "no such folder on the server"
            return result
        validity = _uidvalidity(client, folder)
        engine = store.service.engine
        with engine.connect() as conn:
            checkpoint = store.checkpoint(conn, box.name, folder)
        last = 0
        if checkpoint is not None:
            if checkpoint[0] == validity:
                last = checkpoint[1]
            else:
                result.rescanned = True
        for uid, size in _new_uids(client, last):
            _fetch_one(store, client, box, folder, validity, uid, size, result)
        if checkpoint is None or result.rescanned:  # remember the UIDVALIDITY even if empty
            with write_transaction(engine) as conn:
                if store.checkpoint(conn, box.name, folder) == checkpoint:  # none advanced it
                    store.advance(conn, box.name, folder, validity, 0)
    except (imaplib.IMAP4.error, OSError) as exc:
        result.error = _reason(exc)
    return result


def _fetch_one(store: MailStore, client, box: Mailbox, folder: str, validity: int, uid: int,
               size: int, result: FolderResult) -> None:
    source = f"imap {box.name}/{folder} uid {uid}"
    limit = store.config.max_message_mb
    engine = store.service.engine
    if size > limit * 1024 * 1024:
        with write_transaction(engine) as conn:
            store.failure(conn, source, f"the message ({size / 1024 / 1024:.1f} MB) is larger "
                          f"than max_message_mb ({limit:g} MB); not downloaded", size=size)
            store.advance(conn, box.name, folder, validity, uid)
        result.failures.append(f"{source}: larger than {limit:g} MB")
        return
    raw = _message_bytes(client, uid)  # a lost connection stops here, before the checkpoint
    if raw is None:  # expunged between the listing and the fetch: nothing to keep
        with write_transaction(engine) as conn:
            store.advance(conn, box.name, folder, validity, uid)
        return
    try:
        mail = parse(raw, store.config.max_attachment_mb)
        with write_transaction(engine) as conn:
            outcome = store.store(conn, mail, source="imap", mailbox=box.name, folder=folder,
                                  uid=uid)
            store.advance(conn, box.name, folder, validity, uid)
        if outcome.duplicate:
            result.duplicates += 1
        else:
            result.stored += 1
    except Exception as exc:  # noqa: BLE001 - one bad message must not stop the others
        error = str(exc) if isinstance(exc, NotAnEmail) else \
            f"could not be stored ({exc.__class__.__name__}: {str(exc)[:300]})"
        with write_transaction(engine) as conn:
            store.failure(conn, source, error, raw)
            store.advance(conn, box.name, folder, validity, uid)
        result.failures.append(f"{source}: {error}")


def _uidvalidity(client: imaplib.IMAP4, folder: str) -> int:
    _, values = client.response("UIDVALIDITY")
    for value in values or ():
        if value:
            return int(value)
    status, data = client.status(quote_folder(folder), "(UIDVALIDITY)")
    found = _UIDVALIDITY.search(data[0] or b"") if status == "OK" and data else None
    if found is None:
        raise imaplib.IMAP4.error("the server reported no UIDVALIDITY")
    return int(found.group(1))


def _new_uids(client: imaplib.IMAP4, last: int) -> list[tuple[int, int]]:
    """(UID, size) of the messages above `last`, ascending. `last+1:*` always answers the
    highest message even when it is not above `last` (RFC 3501), hence the filter."""
    status, data = client.uid("FETCH", f"{last + 1}:*", "(UID RFC822.SIZE)")
    if status != "OK":
        raise imaplib.IMAP4.error("the server refused to list the messages")
    found = {}
    for item in data or ():
        line = item[0] if isinstance(item, tuple) else item
        if not isinstance(line, bytes):
            continue
        uid, size = _UID.search(line), _SIZE.search(line)
        if uid and int(uid.group(1)) > last:
            found[int(uid.group(1))] = int(size.group(1)) if size else 0
    return sorted(found.items())


def _message_bytes(client: imaplib.IMAP4, uid: int) -> bytes | None:
    status, data = client.uid("FETCH", str(uid), "(BODY.PEEK[])")
    if status != "OK":
        raise imaplib.IMAP4.error(f"the server refused to send message {uid}")
    for item in data or ():
        if isinstance(item, tuple) and len(item) == 2 and _UID.search(item[0] or b"") \
                and int(_UID.search(item[0]).group(1)) == uid:
            return item[1]
    for item in data or ():  # servers that leave UID out of the answer line
        if isinstance(item, tuple) and len(item) == 2:
            return item[1]
    return None


def quote_folder(name: str) -> str:
    """A folder name as an IMAP string: modified UTF-7 for non-ASCII (RFC 3501 5.1.3),
    quoted."""
    encoded = _modified_utf7(name)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _modified_utf7(name: str) -> str:
    out, pending = [], []

    def flush():
        if pending:
            import base64
            data = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7e:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def _reason(exc: Exception) -> str:
    if isinstance(exc, imaplib.IMAP4.error):
        text = str(exc)
        return text[2:-1] if text.startswith("b'") else text
    return str(exc) or exc.__class__.__name__
