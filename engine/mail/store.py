"""Storing mail: one message row per Message-ID, its attachments in the file store, its links
to records (by address, thread, subject reference, or the record it was sent from), its thread.

Storing is idempotent on Message-ID: the same message fetched again, from another folder, or
imported from a file is found and not stored twice. Each message is stored in its own
transaction (with the IMAP checkpoint that covers it), so a failure loses nothing already
stored and stores nothing twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

import sqlalchemy as sa

from engine.mail.parse import ParsedMail
from engine.registry.mail import MailConfig

UTC = dt.timezone.utc
SUBJECT_TOKEN = re.compile(r"\[([^\[\]\s]{1,100})\]")
ID_TOKEN = re.compile(r"^([a-z][a-z0-9_]*)#([1-9][0-9]{0,17})$")


class MailNotConfigured(Exception):
    """The site has no `mail:` section (docs/mail.md), or lacks the part a command needs."""


def mail_config(service) -> MailConfig:
    config = service.registry.mail
    if config is None:
        raise MailNotConfigured("mail is not configured: add a mail: section to app.yaml "
                                "(docs/mail.md)")
    return config


@dataclass(frozen=True)
class Stored:
    """What storing one message did."""

    id: int
    duplicate: bool
    links: tuple[tuple[str, int], ...] = ()


class MailStore:
    """Writes mail for one RecordService (its schema, registry and file store)."""

    def __init__(self, service):
        self.service = service
        self.config = mail_config(service)
        tables = service.schema.engine
        self.messages = tables["mail_message"]
        self.links = tables["mail_link"]
        self.attachments = tables["mail_attachment"]
        self.checkpoints = tables["mail_checkpoint"]
        self.failures = tables["mail_failure"]

    # ------------------------------------------------------------------ messages

    def existing(self, conn, message_id: str) -> int | None:
        return conn.execute(sa.select(self.messages.c.id).where(
            self.messages.c.message_id == message_id)).scalar()

    def store(self, conn, mail: ParsedMail, *, source: str, mailbox: str | None = None,
              folder: str | None = None, uid: int | None = None, direction: str | None = None,
              status: str = "received", created_by: int | None = None,
              sent_from: tuple[str, int] | None = None) -> Stored:
        """Store a parsed message in the caller's transaction, unless its Message-ID is
        stored already. `sent_from` is the record a message was sent from (linked first)."""
        found = self.existing(conn, mail.message_id)
        if found is not None:
            return Stored(found, True)
        now = dt.datetime.now(UTC)
        if direction is None:
            own = mail.sender is not None and self.config.is_own(mail.sender.address)
            direction = "out" if own else "in"
        files = [(a, self.service.files.put(a.data)) for a in mail.attachments]  # files first
        row = {
            "message_id": mail.message_id, "in_reply_to": mail.in_reply_to,
            "references": list(mail.references), "from_name": mail.sender.name[:300]
            if mail.sender else None, "from_address": mail.sender.address if mail.sender
            else None, "to": [a.json() for a in mail.to], "cc": [a.json() for a in mail.cc],
            "subject": mail.subject, "sent_at": mail.sent_at or now, "stored_at": now,
            "text_body": mail.text, "html_body": mail.html, "direction": direction,
            "status": status, "mailbox": mailbox, "folder": folder, "uid": uid,
            "source": source, "size": mail.size, "problems": list(mail.problems),
            "search_text": search_text(mail), "created_by": created_by}
        new_id = conn.execute(self.messages.insert().values(**row)
                              .returning(self.messages.c.id)).scalar_one()
        for attachment, key in files:
            conn.execute(self.attachments.insert().values(
                message_id=new_id, key=key, name=attachment.name, size=len(attachment.data),
                content_type=attachment.content_type,
                sha256=hashlib.sha256(attachment.data).hexdigest()))
        parents = self._parents(conn, mail)
        self._thread(conn, new_id, mail.message_id, parents)
        links = self._links(conn, mail, parents, sent_from)
        self._write_links(conn, new_id, links)
        return Stored(new_id, False, tuple((e, r) for e, r, _ in links))

    def _parents(self, conn, mail: ParsedMail) -> list[dict]:
        """The stored messages this one answers (In-Reply-To first, then References, newest
        reference first)."""
        wanted = list(dict.fromkeys(([mail.in_reply_to] if mail.in_reply_to else []) +
                                    list(reversed(mail.references))))
        if not wanted:
            return []
        rows = conn.execute(sa.select(self.messages.c.id, self.messages.c.message_id,
                                      self.messages.c.thread_id)
                            .where(self.messages.c.message_id.in_(wanted))).mappings().all()
        order = {mid: i for i, mid in enumerate(wanted)}
        return sorted((dict(r) for r in rows), key=lambda r: order[r["message_id"]])

    def _thread(self, conn, new_id: int, message_id: str, parents: list[dict]) -> None:
        """Join the thread of the message answered; a reply stored before its original (an
        mbox out of order) has its thread joined to the original's when that arrives."""
        thread = parents[0]["thread_id"] if parents else new_id
        conn.execute(self.messages.update().where(self.messages.c.id == new_id)
                     .values(thread_id=thread))
        early = set(conn.execute(sa.select(self.messages.c.thread_id).where(
            self.messages.c.in_reply_to == message_id, self.messages.c.id != new_id))
            .scalars()) - {thread, None}
        if early:
            conn.execute(self.messages.update().where(self.messages.c.thread_id.in_(early))
                         .values(thread_id=thread))

    # ------------------------------------------------------------------ links

    def _links(self, conn, mail: ParsedMail, parents: list[dict],
               sent_from: tuple[str, int] | None) -> list[tuple[str, int, str]]:
        found: dict[tuple[str, int], str] = {}
        if sent_from is not None:
            found[sent_from] = "sent"
        if parents:  # a reply belongs where the message it answers does
            rows = conn.execute(sa.select(self.links.c.entity, self.links.c.record_id).where(
                self.links.c.message_id.in_([p["id"] for p in parents])))
            for entity, record_id in rows:
                found.setdefault((entity, record_id), "thread")
        for key in self.subject_records(conn, mail.subject):
            found.setdefault(key, "subject")
        addresses = [a for a in mail.addresses() if not self.config.is_own(a)]
        for key in self.address_records(conn, addresses):
            found.setdefault(key, "address")
        return [(e, r, how) for (e, r), how in found.items()]

    def address_records(self, conn, addresses: list[str]) -> list[tuple[str, int]]:
        """The live records whose matched email fields hold one of the addresses, and the
        records their `follow` references point at."""
        if not addresses:
            return []
        result: list[tuple[str, int]] = []
        tables = self.service.schema.entities
        for match in self.config.matches:
            table = tables[match.entity]
            follow = [table.c[ref] for ref, _ in match.follow]
            rows = conn.execute(sa.select(table.c.id, *follow).where(
                sa.func.lower(table.c[match.field]).in_(addresses),
                table.c.deleted_at.is_(None)).order_by(table.c.id)).all()
            for row in rows:
                result.append((match.entity, row[0]))
                for (ref, target), value in zip(match.follow, row[1:]):
                    if value is not None and self._live(conn, target, value):
                        result.append((target, value))
        return result

    def subject_records(self, conn, subject: str) -> list[tuple[str, int]]:
        """The live records whose reference tokens (`[Q-7]`, `[opportunity#12]`) the subject
        holds."""
        tokens = SUBJECT_TOKEN.findall(subject or "")
        result = []
        for ref in self.config.subject_refs if tokens else ():
            table = self.service.schema.entities[ref.entity]
            if ref.field == "id":
                ids = [int(m.group(2)) for m in map(ID_TOKEN.match, tokens)
                       if m and m.group(1) == ref.entity]
                condition = table.c.id.in_(ids)
            else:
                condition = table.c[ref.field].in_(tokens)
            rows = conn.execute(sa.select(table.c.id).where(
                condition, table.c.deleted_at.is_(None)).order_by(table.c.id)).scalars()
            result.extend((ref.entity, record_id) for record_id in rows)
        return result

    def _live(self, conn, entity: str, record_id: int) -> bool:
        table = self.service.schema.entities[entity]
        return conn.execute(sa.select(table.c.id).where(
            table.c.id == record_id, table.c.deleted_at.is_(None))).first() is not None

    def _write_links(self, conn, message_id: int, links) -> None:
        if links:
            conn.execute(self.links.insert(), [
                {"message_id": message_id, "entity": e, "record_id": r, "how": how}
                for e, r, how in links])

    def add_link(self, conn, message_id: int, entity: str, record_id: int, how: str) -> bool:
        """Link a stored message to a record; False if it was linked already."""
        exists = conn.execute(sa.select(self.links.c.how).where(
            self.links.c.message_id == message_id, self.links.c.entity == entity,
            self.links.c.record_id == record_id)).first()
        if exists:
            return False
        self._write_links(conn, message_id, [(entity, record_id, how)])
        return True

    def relink(self, conn) -> int:
        """Match every stored message again (records created after their mail arrived);
        return how many links were added. Links already there are kept."""
        added = 0
        rows = conn.execute(sa.select(self.messages.c.id, self.messages.c.from_address,
                                      self.messages.c.to, self.messages.c.cc,
                                      self.messages.c.subject)).mappings().all()
        for row in rows:
            addresses = [row["from_address"] or ""] + [a.get("address", "") for a in
                                                       (row["to"] or []) + (row["cc"] or [])]
            addresses = list(dict.fromkeys(a for a in addresses if a and
                                           not self.config.is_own(a)))
            for entity, record_id in self.address_records(conn, addresses):
                added += self.add_link(conn, row["id"], entity, record_id, "address")
            for entity, record_id in self.subject_records(conn, row["subject"]):
                added += self.add_link(conn, row["id"], entity, record_id, "subject")
        return added

    # ------------------------------------------------------------------ failures, checkpoints

    def failure(self, conn, source: str, error: str, raw: bytes | None = None,
                size: int | None = None) -> int:
        """Log a message that could not be stored; its bytes are kept in the file store (when
        there are any) so that nothing is lost."""
        key = self.service.files.put(raw) if raw else None
        return conn.execute(self.failures.insert().values(
            source=source[:500], error=error, raw_key=key,
            size=size if size is not None else (len(raw) if raw else None),
            at=dt.datetime.now(UTC)).returning(self.failures.c.id)).scalar_one()

    def checkpoint(self, conn, mailbox: str, folder: str) -> tuple[int, int] | None:
        row = conn.execute(sa.select(self.checkpoints.c.uidvalidity, self.checkpoints.c.last_uid)
                           .where(self.checkpoints.c.mailbox == mailbox,
                                  self.checkpoints.c.folder == folder)).first()
        return (row[0], row[1]) if row else None

    def advance(self, conn, mailbox: str, folder: str, uidvalidity: int, last_uid: int) -> None:
        values = {"uidvalidity": uidvalidity, "last_uid": last_uid,
                  "updated_at": dt.datetime.now(UTC)}
        where = (self.checkpoints.c.mailbox == mailbox, self.checkpoints.c.folder == folder)
        if conn.execute(self.checkpoints.update().where(*where).values(values)).rowcount == 0:
            conn.execute(self.checkpoints.insert().values(mailbox=mailbox, folder=folder,
                                                          **values))


def search_text(mail: ParsedMail) -> str:
    """What `q=` searches: subject, names and addresses, body and attachment names."""
    people = [mail.sender] if mail.sender else []
    people += list(mail.to) + list(mail.cc)
    parts = [mail.subject] + [f"{a.name} {a.address}" for a in people] + [mail.text] + \
        [a.name for a in mail.attachments]
    return " ".join(p for p in parts if p).lower()
