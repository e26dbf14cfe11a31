"""The engine's mail tables (docs/mail.md): messages, their links to records, their
attachments, the IMAP checkpoints, and the messages that could not be stored."""

from __future__ import annotations

import sqlalchemy as sa


def _id_type():
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def mail_tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    """Define the mail tables on `metadata` (after crm_user, which they refer to)."""
    from engine.storage.tables import UTCDateTime

    message = sa.Table(
        "crm_mail_message", metadata,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        # RFC 5322 Message-ID with its angle brackets; the key that makes storing idempotent
        sa.Column("message_id", sa.String(500), nullable=False, unique=True),
        sa.Column("in_reply_to", sa.String(500)),
        sa.Column("references", sa.JSON, nullable=False),  # list of Message-IDs, oldest first
        sa.Column("thread_id", _id_type()),  # the id of the first message of the thread
        sa.Column("from_name", sa.String(300)),
        sa.Column("from_address", sa.String(320)),
        sa.Column("to", sa.JSON, nullable=False),  # [{"name", "address"}...]
        sa.Column("cc", sa.JSON, nullable=False),
        sa.Column("subject", sa.Text),
        sa.Column("sent_at", UTCDateTime),  # the Date header (else when it was stored)
        sa.Column("stored_at", UTCDateTime, nullable=False),
        sa.Column("text_body", sa.Text),
        sa.Column("html_body", sa.Text),  # sanitized; None when the message had no HTML
        sa.Column("direction", sa.String(3), nullable=False),  # in | out
        sa.Column("status", sa.String(10), nullable=False),  # received | sending | sent
        sa.Column("mailbox", sa.String(63)),
        sa.Column("folder", sa.String(255)),
        sa.Column("uid", sa.BigInteger),
        sa.Column("source", sa.String(20), nullable=False),  # imap | import | smtp
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("problems", sa.JSON, nullable=False),  # what was left out, and why
        sa.Column("search_text", sa.Text, nullable=False),  # lower-cased, for `q=`
        sa.Column("created_by", _id_type(), sa.ForeignKey("crm_user.id")),
        sa.Index("crm_mail_message_thread", "thread_id", "sent_at"),
        sa.Index("crm_mail_message_sent", "sent_at", "id"),
        sa.Index("crm_mail_message_reply", "in_reply_to"),  # a thread joined late
    )
    link = sa.Table(
        "crm_mail_link", metadata,
        sa.Column("message_id", _id_type(), sa.ForeignKey("crm_mail_message.id",
                                                          ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("entity", sa.String(63), primary_key=True),
        sa.Column("record_id", _id_type(), primary_key=True),
        sa.Column("how", sa.String(10), nullable=False),  # address | thread | subject | sent | manual
        sa.Index("crm_mail_link_record", "entity", "record_id", "message_id"),
    )
    attachment = sa.Table(
        "crm_mail_attachment", metadata,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("message_id", _id_type(), sa.ForeignKey("crm_mail_message.id",
                                                          ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),  # in the file store
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Index("crm_mail_attachment_message", "message_id", "id"),
    )
    checkpoint = sa.Table(
        "crm_mail_checkpoint", metadata,
        sa.Column("mailbox", sa.String(63), primary_key=True),
        sa.Column("folder", sa.String(255), primary_key=True),
        sa.Column("uidvalidity", sa.BigInteger, nullable=False),
        sa.Column("last_uid", sa.BigInteger, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    failure = sa.Table(
        "crm_mail_failure", metadata,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(500), nullable=False),  # "imap sales/INBOX uid 7", a file
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("raw_key", sa.String(64)),  # the raw message in the file store, when kept
        sa.Column("size", sa.BigInteger),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Index("crm_mail_failure_at", "at", "id"),
    )
    return {"mail_message": message, "mail_link": link, "mail_attachment": attachment,
            "mail_checkpoint": checkpoint, "mail_failure": failure}
