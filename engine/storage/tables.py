"""The registry as SQLAlchemy tables: one per entity, plus the engine's own tables.

Entity tables are named `e_<entity>` and the engine's `crm_<name>`, so no entity name can
collide with the engine's tables. Identifiers are always quoted by SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator

from engine.registry.model import Entity, Field, Registry
from engine.storage.mailtables import mail_tables
from engine.storage.runtimetables import runtime_tables

UTC = dt.timezone.utc
MAX_NAME = 63  # PostgreSQL's identifier limit


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every database (SQLite keeps naive text, so the
    engine writes one format, always UTC, and attaches UTC when reading)."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(sa.DateTime(timezone=dialect.name != "sqlite"))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def short_name(name: str) -> str:
    """Keep a generated identifier within 63 characters, stable and unique by a hash."""
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[:MAX_NAME - 9]}_{digest}"


def table_name(entity: str) -> str:
    return short_name(f"e_{entity}")


def column_type(field: Field) -> sa.types.TypeEngine | None:
    """Return the column type of a field, or None for fields without a column (lines)."""
    kind = field.kind.name
    if kind in ("string", "email", "phone", "url", "enum", "autonumber"):
        return sa.String(field.max_length or 255)
    if kind == "text":
        return sa.Text()
    if kind == "integer":
        return sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    if kind == "decimal":
        return sa.Numeric(field.precision or 18, field.scale if field.scale is not None else 2)
    if kind in ("money", "rollup"):
        return sa.Numeric(18, 2)
    if kind == "percent":
        return sa.Numeric(5, 2)
    if kind == "boolean":
        return sa.Boolean()
    if kind == "date":
        return sa.Date()
    if kind == "datetime":
        return UTCDateTime()
    if kind in ("multi_enum", "json", "file"):  # file: its metadata (engine/records/uploads.py)
        return sa.JSON()
    if kind == "reference":
        return sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    return None


def _id_type():
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def engine_tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    """Define the engine's own tables: users, roles, tokens, audit, notifications, config."""
    users = sa.Table(
        "crm_user", metadata,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(150), nullable=False, unique=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254)),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("locale", sa.String(8)),
        sa.Column("active", sa.Boolean, nullable=False, default=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_login_at", UTCDateTime),
    )
    user_roles = sa.Table(
        "crm_user_role", metadata,
        sa.Column("user_id", _id_type(), sa.ForeignKey("crm_user.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("role", sa.String(63), primary_key=True),
    )
    tokens = sa.Table(
        "crm_token", metadata,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("user_id", _id_type(), sa.ForeignKey("crm_user.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime),
        # "api": a bearer token of the JSON API; "session": a browser session, which the API
        # refuses (the cookie that carries it never gives API access); NULL: issued before
        # kinds, an API token
        sa.Column("kind", sa.String(8)),
    )
    audit = sa.Table(
        "crm_audit", metadata,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(63), nullable=False),
        sa.Column("record_id", _id_type(), nullable=False),
        sa.Column("action", sa.String(80), nullable=False),
        sa.Column("user_id", _id_type()),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("changes", sa.JSON, nullable=False),
        sa.Index("crm_audit_record", "entity", "record_id", "id"),
        sa.Index("crm_audit_user", "user_id", "at"),
        sa.Index("crm_audit_at", "at", "id"),  # the admin console's audit log, newest first
    )
    notifications = sa.Table(
        "crm_notification", metadata,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("user_id", _id_type(), sa.ForeignKey("crm_user.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("title", sa.JSON),
        sa.Column("message", sa.JSON, nullable=False),
        sa.Column("entity", sa.String(63)),
        sa.Column("record_id", _id_type()),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("read_at", UTCDateTime),
        # mailed to the user in the background when the site sends mail (engine/runtime)
        sa.Column("mail_state", sa.String(10)),  # pending | sent | skipped | failed
        sa.Column("mail_attempts", sa.Integer),
        sa.Column("lease_owner", sa.String(120)),
        sa.Column("lease_until", UTCDateTime),
        sa.Index("crm_notification_user", "user_id", "id"),
        sa.Index("crm_notification_mail", "mail_state", "id"),
    )
    config = sa.Table(
        "crm_config", metadata,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("applied_at", UTCDateTime, nullable=False),
        sa.Column("snapshot", sa.JSON, nullable=False),
        # what every process compares its own configuration with: the id is the version
        sa.Column("fingerprint", sa.String(64)),
    )
    sequences = sa.Table(
        "crm_sequence", metadata,
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("value", _id_type(), nullable=False),
    )
    ticks = sa.Table(
        "crm_automation_tick", metadata,
        sa.Column("automation", sa.String(63), primary_key=True),
        sa.Column("tick_at", UTCDateTime, primary_key=True),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime),
        sa.Column("matched", sa.Integer, nullable=False, default=0),
        sa.Column("failed", sa.Integer, nullable=False, default=0),
        # the worker running the tick holds it until `lease_until`; `last_id` is the last
        # record done, committed with that record's changes, so a resumed tick goes on from it
        sa.Column("lease_owner", sa.String(120)),
        sa.Column("lease_until", UTCDateTime),
        sa.Column("last_id", sa.BigInteger),
        sa.Column("enqueued_at", UTCDateTime),
        sa.Index("crm_automation_tick_open", "finished_at", "lease_until"),
    )
    failures = sa.Table(
        "crm_automation_failure", metadata,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("automation", sa.String(63), nullable=False),
        sa.Column("tick_at", UTCDateTime),
        sa.Column("entity", sa.String(63), nullable=False),
        sa.Column("record_id", _id_type()),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Index("crm_automation_failure_at", "automation", "at"),
    )
    outbox = sa.Table(
        "crm_outbox", metadata,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("automation", sa.String(63), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret_env", sa.String(255), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("delivered_at", UTCDateTime),
        sa.Column("given_up_at", UTCDateTime),
        sa.Column("lease_owner", sa.String(120)),  # the worker sending it, until lease_until
        sa.Column("lease_until", UTCDateTime),
        sa.Index("crm_outbox_due", "delivered_at", "given_up_at", "next_attempt_at"),
    )
    deliveries = sa.Table(
        "crm_webhook_delivery", metadata,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("outbox_id", _id_type(), sa.ForeignKey("crm_outbox.id"), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Index("crm_webhook_delivery_outbox", "outbox_id", "id"),
    )
    login_failures = sa.Table(
        "crm_login_failure", metadata,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(255), nullable=False),  # "user:<name>" or "addr:<ip>"
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Index("crm_login_failure_key", "key", "at"),
    )
    inbound_events = sa.Table(  # inbound webhooks: one row per processed event, per source
        "crm_inbound_event", metadata,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(63), nullable=False),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("entity", sa.String(63), nullable=False),
        sa.Column("record_id", _id_type()),
        sa.Column("outcome", sa.JSON, nullable=False),
        sa.UniqueConstraint("source", "event_id", name="crm_inbound_event_key"),
    )
    import_jobs = sa.Table(  # the admin console's import wizard (engine/records/importjobs.py)
        "crm_import_job", metadata,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(63), nullable=False),
        sa.Column("user_id", _id_type(), sa.ForeignKey("crm_user.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),  # csv or xlsx
        sa.Column("content", sa.LargeBinary),  # the upload; dropped once the run ends
        sa.Column("header", sa.JSON, nullable=False),
        sa.Column("sample", sa.JSON, nullable=False),
        sa.Column("row_count", sa.Integer, nullable=False),
        sa.Column("mapping", sa.JSON),
        sa.Column("all_or_nothing", sa.Boolean, nullable=False, default=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("done_rows", sa.Integer, nullable=False, default=0),
        sa.Column("created", sa.Integer, nullable=False, default=0),
        sa.Column("updated", sa.Integer, nullable=False, default=0),
        sa.Column("rejected", sa.Integer, nullable=False, default=0),
        sa.Column("rolled_back", sa.Boolean, nullable=False, default=False),
        sa.Column("error", sa.Text),
        sa.Column("rejected_file", sa.LargeBinary),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),  # the running job's heartbeat
        sa.Column("finished_at", UTCDateTime),
        # the worker running it holds it until lease_until; done_rows is its checkpoint
        sa.Column("lease_owner", sa.String(120)),
        sa.Column("lease_until", UTCDateTime),
        sa.Index("crm_import_job_user", "user_id", "id"),
    )
    import_mappings = sa.Table(  # the wizard's column mapping, remembered per file header
        "crm_import_mapping", metadata,
        sa.Column("entity", sa.String(63), primary_key=True),
        sa.Column("header_key", sa.String(64), primary_key=True),  # sha256 of the header
        sa.Column("header", sa.JSON, nullable=False),
        sa.Column("mapping", sa.JSON, nullable=False),
        sa.Column("updated_by", _id_type()),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    shares = sa.Table(  # the records a sharing rule gives a user (engine/storage/sharing.py)
        "crm_share", metadata,
        sa.Column("rule", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("user_id", _id_type(), primary_key=True, autoincrement=False),
        sa.Column("record_id", _id_type(), primary_key=True, autoincrement=False),
        sa.Index("crm_share_record", "rule", "record_id"),
        sqlite_with_rowid=False,  # the rows are their key: one B-tree, not a table and an index
    )
    share_rules = sa.Table(  # the sharing rules whose rows are built
        "crm_share_rule", metadata,
        sa.Column("rule", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("entity", sa.String(63), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("built_at", UTCDateTime, nullable=False),
    )
    return {"share": shares, "share_rule": share_rules, "inbound_event": inbound_events,
            "outbox": outbox, "webhook_delivery": deliveries, "login_failure": login_failures,
            "user": users, "user_role": user_roles, "token": tokens, "audit": audit,
            "notification": notifications, "config": config, "sequence": sequences,
            "automation_tick": ticks, "automation_failure": failures,
            "import_job": import_jobs, "import_mapping": import_mappings,  # after crm_user
            **mail_tables(metadata),  # after crm_user (engine/storage/mailtables.py)
            **runtime_tables(metadata, _id_type, UTCDateTime),  # after crm_import_job
            "attachment": _attachments(metadata), "exchange_rate": _exchange_rates(metadata)}


def _attachments(metadata: sa.MetaData) -> sa.Table:
    """Files attached to any record (engine/records/attachments.py): what each is, who added
    it and when; the bytes are in the file store under `key`. Deleted ones keep their row."""
    return sa.Table(
        "crm_attachment", metadata,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(63), nullable=False),
        sa.Column("record_id", _id_type(), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_by", _id_type()),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("deleted_by", _id_type()),
        sa.Column("deleted_at", UTCDateTime),
        sa.Index("crm_attachment_record", "entity", "record_id", "id"),
    )


def _exchange_rates(metadata: sa.MetaData) -> sa.Table:
    """Exchange rates by day (engine/records/currency.py): 1 unit of `currency` is worth `rate`
    units of `base` from `day` on. Rates keep their base, so changing `base_currency` never
    applies old rates to the new one. The primary key (base, currency, day) is the index the
    reports' "latest rate on or before" lookup walks backwards, one seek per row."""
    return sa.Table(
        "crm_exchange_rate", metadata,
        sa.Column("base", sa.String(3), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("rate", sa.Numeric(24, 10), nullable=False),
        sa.Column("updated_by", _id_type()),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )


@dataclass(frozen=True)
class Schema:
    """The tables of one registry: entity name -> table, and the engine's tables by role."""

    metadata: sa.MetaData
    entities: Mapping[str, sa.Table]
    engine: Mapping[str, sa.Table]


def _record_columns(entity: Entity, registry: Registry) -> list[sa.Column]:
    columns = [
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("version", sa.Integer, nullable=False, default=1),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("created_by", _id_type(), sa.ForeignKey("crm_user.id")),
        sa.Column("updated_by", _id_type(), sa.ForeignKey("crm_user.id")),
        sa.Column("owner", _id_type(), sa.ForeignKey("crm_user.id")),
        sa.Column("deleted_at", UTCDateTime),
    ]
    if entity.parent:
        columns.append(sa.Column("parent_id", _id_type(),
                                 sa.ForeignKey(f"{table_name(entity.parent)}.id",
                                               ondelete="CASCADE"), nullable=False))
    for field in list(entity.fields.values()) + list(entity.removed_fields.values()):
        type_ = column_type(field)
        if type_ is None:
            continue
        # References carry no database foreign key: records are soft-deleted, so the database
        # never sees the delete that `on_delete` is about (the record service applies it), and
        # configurations may reference each other in cycles no CREATE order can satisfy.
        args = [sa.ForeignKey("crm_user.id")] if field.type == "reference" and \
            field.to == "user" else []
        columns.append(sa.Column(field.name, type_, *args, nullable=True))
    return columns


def _partial(table: sa.Table) -> dict:
    live = table.c.deleted_at.is_(None)
    return {"sqlite_where": live, "postgresql_where": live}


def _indexes(entity: Entity, table: sa.Table) -> None:
    name = table.name
    seen: set[tuple[str, ...]] = set()

    def add(columns: tuple[str, ...], unique: bool = False) -> None:
        key = (("u",) if unique else ()) + columns
        if key in seen:
            return
        seen.add(key)
        label = "uq" if unique else "ix"
        sa.Index(short_name(f"{label}_{name}_{'_'.join(columns)}"),
                 *[table.c[c] for c in columns], unique=unique, **_partial(table))

    if entity.parent:
        add(("parent_id",))
    for field in entity.fields.values():
        if not field.kind.stored or field.type in ("json", "multi_enum"):
            continue
        if field.type == "reference" or field.index:
            add((field.name,))
        if field.unique:
            add((field.name,), unique=True)
    for group in entity.indexes:
        add(group)
    for group in entity.unique:
        add(group, unique=True)
    for column, _ in entity.list_sort:
        add((column,))
    add(("owner",))
    add(("created_at",))


def build_schema(registry: Registry) -> Schema:
    """Return the tables the registry needs, built once per registry."""
    metadata = sa.MetaData()
    engine = engine_tables(metadata)
    tables = {}
    # parents first, so that a child's foreign key finds its parent's table
    ordered = sorted(registry.entities.values(), key=lambda e: e.parent is not None)
    for entity in ordered:
        table = sa.Table(table_name(entity.name), metadata, *_record_columns(entity, registry))
        _indexes(entity, table)
        tables[entity.name] = table
    return Schema(metadata, MappingProxyType(tables), MappingProxyType(engine))
