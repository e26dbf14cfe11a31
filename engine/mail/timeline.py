"""Reading mail with permissions: a record's messages, search, attachments, manual links.

Who sees a message: an admin sees every message; anyone else sees a message when they may
read at least one record it is linked to (by the record service's row rules, sharing rules
included). A message linked to nothing (an unknown sender) is seen by admins only, until
someone links it.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import sqlalchemy as sa

from engine.errors import BadRequest, Forbidden, NotFound, ValidationFailed
from engine.records.access import SYSTEM, Caller
from engine.records.values import to_json
from engine.storage.files import MissingFile

MAX_LIMIT = 500
DEFAULT_LIMIT = 50


class MailReader:
    """Mail as a caller may see it, for one RecordService."""

    def __init__(self, service):
        self.service = service
        self.config = service.registry.mail
        tables = service.schema.engine
        self.messages = tables["mail_message"]
        self.links = tables["mail_link"]
        self.attachments = tables["mail_attachment"]

    # ------------------------------------------------------------------ permissions

    def linkable(self, entity_name: str) -> bool:
        """Whether records of the entity take mail (their pages show it)."""
        return self.config is not None and entity_name in self.config.entities

    def visible(self, caller: Caller):
        """The SQL condition on messages the caller may see (None: all of them)."""
        if caller.is_admin:
            return None
        reachable = []
        for name in self.config.entities if self.config else ():
            entity = self.service.registry.entities[name]
            if self.service.access(caller, entity).read is None:
                continue
            table = self.service.schema.entities[name].alias()
            readable = sa.select(table.c.id).where(
                self.service.read_condition(caller, entity, table))
            reachable.append(sa.and_(self.links.c.entity == name,
                                     self.links.c.record_id.in_(readable)))
        if not reachable:
            return sa.false()
        return sa.exists().where(self.links.c.message_id == self.messages.c.id,
                                 sa.or_(*reachable))

    def _record(self, caller: Caller, entity_name: str, record_id) -> dict:
        """The record, if mail goes with its entity and the caller may read it."""
        if not self.linkable(entity_name):
            raise NotFound(f"no messages for '{entity_name}'")
        return self.service.get(caller, entity_name, record_id, with_lines=False)

    # ------------------------------------------------------------------ reading

    def for_record(self, caller: Caller, entity_name: str, record_id, limit=None,
                   cursor: str | None = None) -> tuple[list[dict], str | None]:
        """The messages linked to a readable record, newest first, a page at a time."""
        record = self._record(caller, entity_name, record_id)
        linked = sa.select(self.links.c.message_id).where(
            self.links.c.entity == entity_name, self.links.c.record_id == record["id"])
        return self._page(caller, [self.messages.c.id.in_(linked)], limit, cursor)

    def search(self, caller: Caller, text: str = "", limit=None, cursor: str | None = None,
               unlinked: bool = False) -> tuple[list[dict], str | None]:
        """Messages the caller may see whose subject, addresses, body or attachment names
        hold every word of `text` (case-insensitive); `unlinked` (admins): only those
        linked to no record."""
        if unlinked and not caller.is_admin:  # mail linked to nothing is for admins to sort
            raise Forbidden("unlinked: only admins list the messages linked to no record",
                            {"unlinked": ["only admins list the messages linked to no record"]})
        conditions = []
        visible = self.visible(caller)
        if visible is not None:
            conditions.append(visible)
        for word in text.lower().split()[:10]:
            escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append(self.messages.c.search_text.like(f"%{escaped}%", escape="\\"))
        if unlinked:
            conditions.append(~sa.exists().where(self.links.c.message_id == self.messages.c.id))
        return self._page(caller, conditions, limit, cursor)

    def message(self, caller: Caller, message_id) -> dict:
        rows, _ = self._page(caller, self._visible_one(caller, message_id), 1, None)
        if not rows:
            raise NotFound(f"no message {message_id}")
        return rows[0]

    def _visible_one(self, caller: Caller, message_id) -> list:
        conditions = [self.messages.c.id == _id(message_id)]
        visible = self.visible(caller)
        return conditions + ([visible] if visible is not None else [])

    def _page(self, caller: Caller, conditions: list, limit, cursor: str | None):
        limit = _limit(limit)
        query = sa.select(self.messages).where(*conditions)
        if cursor:
            at, last_id = _parse_cursor(cursor)
            query = query.where(sa.or_(self.messages.c.sent_at < at, sa.and_(
                self.messages.c.sent_at == at, self.messages.c.id < last_id)))
        query = query.order_by(self.messages.c.sent_at.desc(), self.messages.c.id.desc()) \
            .limit(limit + 1)
        with self.service.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
            more = len(rows) > limit
            rows = rows[:limit]
            ids = [r["id"] for r in rows]
            files = conn.execute(sa.select(self.attachments).where(
                self.attachments.c.message_id.in_(ids)).order_by(self.attachments.c.id)
            ).mappings().all() if ids else []
            links = conn.execute(sa.select(self.links).where(
                self.links.c.message_id.in_(ids))).mappings().all() if ids else []
            readable = self._readable_links(conn, caller, links)
        by_message: dict[int, list] = {}
        for f in files:
            by_message.setdefault(f["message_id"], []).append(attachment_json(f))
        links_of: dict[int, list] = {}
        for link in links:
            if (link["entity"], link["record_id"]) in readable:
                links_of.setdefault(link["message_id"], []).append(
                    {"entity": link["entity"], "id": link["record_id"], "how": link["how"]})
        result = [message_json(r, by_message.get(r["id"], []), links_of.get(r["id"], []))
                  for r in rows]
        next_cursor = _cursor(rows[-1]) if more and rows else None
        return result, next_cursor

    def _readable_links(self, conn, caller: Caller, links) -> set[tuple[str, int]]:
        """The linked records the caller may read: the only links a message shows them."""
        wanted: dict[str, set[int]] = {}
        for link in links:
            wanted.setdefault(link["entity"], set()).add(link["record_id"])
        found = set()
        for name, ids in wanted.items():
            entity = self.service.registry.entities.get(name)
            if entity is None:
                continue
            table = self.service.schema.entities[name]
            rows = conn.execute(sa.select(table.c.id).where(
                table.c.id.in_(ids), self.service.read_condition(caller, entity, table)))
            found.update((name, r) for r in rows.scalars())
        return found

    def attachment(self, caller: Caller, entity_name: str, record_id, message_id,
                   attachment_id) -> tuple[dict[str, Any], bytes]:
        """An attachment of a message linked to a record the caller may read, and its bytes."""
        record = self._record(caller, entity_name, record_id)
        with self.service.engine.connect() as conn:
            row = conn.execute(sa.select(self.attachments).join(
                self.links, self.links.c.message_id == self.attachments.c.message_id).where(
                self.attachments.c.id == _id(attachment_id),
                self.attachments.c.message_id == _id(message_id),
                self.links.c.entity == entity_name, self.links.c.record_id == record["id"])
            ).mappings().first()
        if row is None:
            raise NotFound(f"no attachment {attachment_id}")
        try:
            return attachment_json(row), self.service.files.get(row["key"])
        except MissingFile:
            raise NotFound("the file of this attachment is missing") from None

    # ------------------------------------------------------------------ linking by hand

    def link(self, caller: Caller, message_id, entity_name: str, record_id) -> dict:
        """Link a message the caller may see to a record they may update (an unknown
        sender's mail, once the customer exists); answer the message."""
        from engine.mail.store import MailStore
        from engine.storage.database import write_transaction
        if not isinstance(entity_name, str) or not self.linkable(entity_name):
            raise ValidationFailed("entity: mail is not linked to this entity",
                                   {"entity": ["mail is not linked to this entity"]})
        self.message(caller, message_id)  # NotFound for a message the caller cannot see
        entity = self.service.registry.entities[entity_name]
        try:
            record = self.service.get(caller, entity_name, record_id, with_lines=False)
        except NotFound:
            raise ValidationFailed("id: no such record", {"id": ["no such record"]}) from None
        whole = self.service.get(SYSTEM, entity_name, record["id"], with_lines=False)
        if not self.service.allows(caller, entity, whole, "update"):
            raise Forbidden("you may not change this record, so you may not link mail to it")
        with write_transaction(self.service.engine) as conn:
            MailStore(self.service).add_link(conn, _id(message_id), entity_name, record["id"],
                                             "manual")
        return self.message(caller, message_id)


def message_json(row: dict, attachments: list, links: list) -> dict:
    return {
        "id": row["id"], "message_id": row["message_id"], "thread_id": row["thread_id"],
        "in_reply_to": row["in_reply_to"], "references": row["references"] or [],
        "direction": row["direction"], "status": row["status"],
        "from": {"name": row["from_name"] or "", "address": row["from_address"] or ""},
        "to": row["to"] or [], "cc": row["cc"] or [], "subject": row["subject"] or "",
        "sent_at": to_json(None, row["sent_at"]), "text": row["text_body"] or "",
        "html": row["html_body"], "mailbox": row["mailbox"], "folder": row["folder"],
        "source": row["source"], "size": row["size"], "problems": row["problems"] or [],
        "attachments": attachments, "links": links, "created_by": row["created_by"]}


def attachment_json(row) -> dict:
    return {"id": row["id"], "message": row["message_id"], "name": row["name"],
            "size": row["size"], "content_type": row["content_type"], "sha256": row["sha256"]}


def _id(value) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 0
    return number if 0 < number < 2 ** 63 else 0


def _limit(value) -> int:
    if value in (None, ""):
        return DEFAULT_LIMIT
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest("limit: must be a whole number", {"limit": ["must be a whole number"]})
    if not 1 <= number <= MAX_LIMIT:
        raise BadRequest(f"limit: must be between 1 and {MAX_LIMIT}",
                         {"limit": [f"must be between 1 and {MAX_LIMIT}"]})
    return number


def _cursor(row: dict) -> str:
    text = f"{row['sent_at'].astimezone(dt.timezone.utc).isoformat()}|{row['id']}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _parse_cursor(cursor: str) -> tuple[dt.datetime, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, last = text.split("|")
        last_id = int(last)
        if not 0 <= last_id < 2 ** 63:
            raise ValueError
        return dt.datetime.fromisoformat(at), last_id
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("cursor: not a cursor this list gave",
                         {"cursor": ["not a cursor this list gave"]}) from None
