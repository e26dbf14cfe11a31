"""Files attached to records: any record of a top-level entity may have a list of them.

Attachments follow their record's permissions: whoever may read the record may list and
download them; whoever may update it may add and delete them. Each addition and deletion is
an entry of the record's audit trail (`attach`, `detach`). They are not fields: adding one
does not change the record's version, so nobody editing the record gets a conflict from it.
Deleting one keeps its row (who and when) and lets the orphan sweep remove its bytes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from engine.errors import NotFound, ValidationFailed
from engine.records.access import SYSTEM, Caller
from engine.records.messages import text
from engine.records.uploads import Upload, check_upload, key_of, public, upload_of
from engine.records.values import Invalid, to_json
from engine.storage.database import write_transaction
from engine.storage.files import MissingFile

UTC = dt.timezone.utc
# the key of attachment changes in the audit trail: no field can have it (identifiers start
# with a letter), so history never takes it for a field
AUDIT_KEY = "_attachments"
UPLOAD = "file"  # the key an upload's refusal is reported under (the multipart part's name)


class Attachments:
    """The attachments of any record, through the record service's permissions."""

    def __init__(self, service):
        self.service = service
        self.table = service.schema.engine["attachment"]

    def _record(self, caller: Caller, entity_name: str, record_id, action: str, conn) -> dict:
        """The record, if the caller may read it (else NotFound) and do `action` to it."""
        service = self.service
        entity = service.entity(entity_name)
        if entity.parent:
            raise NotFound(f"no entity '{entity_name}'")
        record = service.get(caller, entity.name, record_id, conn=conn, with_lines=False)
        if action != "read":  # judged on the whole record, as the service's own writes are
            whole = service.get(SYSTEM, entity.name, record["id"], conn=conn, with_lines=False)
            service._check_row_access(caller, entity, whole, action, conn)
        return record

    def list(self, caller: Caller, entity_name: str, record_id) -> list[dict[str, Any]]:
        """The live attachments of a readable record, oldest first."""
        with self.service.engine.connect() as conn:
            record = self._record(caller, entity_name, record_id, "read", conn)
            rows = conn.execute(sa.select(self.table).where(
                self.table.c.entity == entity_name, self.table.c.record_id == record["id"],
                self.table.c.deleted_at.is_(None)).order_by(self.table.c.id)).mappings().all()
        return [self._json(row) for row in rows]

    def add(self, caller: Caller, entity_name: str, record_id, upload: Upload | dict,
            max_mb: float | None = None) -> dict[str, Any]:
        """Attach a file to a record the caller may update; raise ValidationFailed for an
        empty or too large file, naming `file`."""
        try:
            pending = check_upload(upload_of(upload), max_mb)
        except Invalid as exc:
            raise ValidationFailed(text("invalid_field", caller.locale),
                                   {UPLOAD: [exc.message.render(caller.locale)]}) from None
        stamp = dt.datetime.now(UTC)
        with write_transaction(self.service.engine) as conn:
            record = self._record(caller, entity_name, record_id, "update", conn)
            key = self.service.files.put(pending.data)  # the file first, then the row
            row = {"entity": entity_name, "record_id": record["id"], "key": key,
                   "name": pending.name, "size": pending.size,
                   "content_type": pending.content_type, "sha256": pending.sha256,
                   "created_by": caller.user_id, "created_at": stamp}
            new_id = conn.execute(self.table.insert().values(**row)
                                  .returning(self.table.c.id)).scalar_one()
            row["id"] = new_id
            self._audit(conn, caller, entity_name, record["id"], "attach",
                        [None, self._json(row)], stamp)
        return self._json(row)

    def delete(self, caller: Caller, entity_name: str, record_id, attachment_id) -> None:
        """Delete an attachment of a record the caller may update (its row is kept)."""
        stamp = dt.datetime.now(UTC)
        with write_transaction(self.service.engine) as conn:
            record = self._record(caller, entity_name, record_id, "update", conn)
            row = self._row(conn, caller, entity_name, record["id"], attachment_id)
            conn.execute(self.table.update().where(self.table.c.id == row["id"])
                         .values(deleted_at=stamp, deleted_by=caller.user_id))
            self._audit(conn, caller, entity_name, record["id"], "detach",
                        [self._json(row), None], stamp)

    def content(self, caller: Caller, entity_name: str, record_id,
                attachment_id) -> tuple[dict[str, Any], bytes]:
        """An attachment of a readable record and its bytes."""
        with self.service.engine.connect() as conn:
            record = self._record(caller, entity_name, record_id, "read", conn)
            row = self._row(conn, caller, entity_name, record["id"], attachment_id)
        try:
            return self._json(row), self.service.files.get(row["key"])
        except MissingFile:
            raise NotFound(text("file_missing", caller.locale)) from None

    def _row(self, conn, caller: Caller, entity_name: str, record_id: int, attachment_id):
        try:
            attachment_id = int(attachment_id)
        except (TypeError, ValueError):
            attachment_id = 0
        row = conn.execute(sa.select(self.table).where(
            self.table.c.id == attachment_id, self.table.c.entity == entity_name,
            self.table.c.record_id == record_id, self.table.c.deleted_at.is_(None))
        ).mappings().first() if 0 < attachment_id < 2 ** 63 else None
        if row is None:
            raise NotFound(text("no_attachment", caller.locale, id=attachment_id))
        return dict(row)

    def _audit(self, conn, caller: Caller, entity_name: str, record_id: int, action: str,
               change: list, stamp: dt.datetime) -> None:
        entity = self.service.registry.entities[entity_name]
        self.service._audit(conn, caller, entity, record_id, action, {AUDIT_KEY: change}, stamp)

    @staticmethod
    def _json(row) -> dict[str, Any]:
        return {"id": row["id"], "name": row["name"], "size": row["size"],
                "content_type": row["content_type"], "sha256": row["sha256"],
                "created_by": row["created_by"], "created_at": to_json(None, row["created_at"])}

    def field_content(self, caller: Caller, entity_name: str, record_id,
                      field_name: str) -> tuple[dict[str, Any], bytes]:
        """The file a file field of a readable record holds, and its bytes. A field the
        caller may not read (hidden) is as absent as one that does not exist."""
        with self.service.engine.connect() as conn:
            record = self._record(caller, entity_name, record_id, "read", conn)
        fld = self.service.registry.entities[entity_name].fields.get(field_name)
        if fld is None or fld.type != "file" or field_name not in record:
            raise NotFound(text("unknown_field", caller.locale, entity=entity_name))
        stored = record[field_name]
        if not stored:
            raise NotFound(text("no_file", caller.locale))
        try:
            return public(stored), self.service.files.get(key_of(stored))
        except MissingFile:
            raise NotFound(text("file_missing", caller.locale)) from None


def referenced_keys(service) -> set[str]:
    """Every store key a row refers to: file fields of all records, soft-deleted ones and
    fields hidden with `remove: true` included (their data is kept), and live attachments."""
    keys: set[str] = set()
    with service.engine.connect() as conn:
        for name, entity in service.registry.entities.items():
            table = service.schema.entities[name]
            columns = [table.c[f.name] for f in (*entity.fields.values(),
                                                 *entity.removed_fields.values())
                       if f.type == "file" and f.name in table.c]
            for column in columns:
                for (value,) in conn.execute(sa.select(column).where(column.is_not(None))):
                    key = key_of(value)
                    if key:
                        keys.add(key)
        attachments = service.schema.engine["attachment"]
        keys.update(conn.execute(sa.select(attachments.c.key).where(
            attachments.c.deleted_at.is_(None))).scalars())
        # mail attachments and the raw bytes of mail that could not be stored (docs/mail.md)
        keys.update(conn.execute(sa.select(service.schema.engine["mail_attachment"].c.key))
                    .scalars())
        failures = service.schema.engine["mail_failure"]
        keys.update(conn.execute(sa.select(failures.c.raw_key).where(
            failures.c.raw_key.is_not(None))).scalars())
    return keys


def sweep_orphans(service, min_age: dt.timedelta = dt.timedelta(hours=1),
                  dry_run: bool = False) -> list[str]:
    """Delete stored files no row refers to and that are older than `min_age` (younger ones
    may belong to a write still in progress); return their keys. Files of replaced or cleared
    file fields and of deleted attachments end here; the audit trail keeps their name, size
    and checksum."""
    cutoff = dt.datetime.now(UTC) - min_age
    # listed before the rows are read: a file stored after this is not a candidate
    candidates = [key for key, written in service.files.keys() if written < cutoff]
    referenced = referenced_keys(service)
    orphans = sorted(key for key in candidates if key not in referenced)
    if not dry_run:
        for key in orphans:
            service.files.delete(key)
    return orphans
