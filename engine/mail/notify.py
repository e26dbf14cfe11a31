"""In-app notifications mailed to their users (`mail: {notifications: true}`, docs/mail.md).

A notification is written with `mail_state = pending` in the transaction of the change that
caused it; once that commits, a `notifications.mail` job is asked for. The job claims pending
notifications with a lease, sends each to its user's address over the site's SMTP server, in
the user's language, and marks it `sent` (or `skipped`: the user has no address; or `failed`
after MAX_ATTEMPTS) with the claim checked, so a notification is mailed once. A crash between
the server taking a mail and the mark committing can mail it twice; nothing else can.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from typing import Callable

import sqlalchemy as sa

from engine.errors import RecordError
from engine.registry.labels import Label
from engine.storage import leases
from engine.storage.database import write_transaction

log = logging.getLogger("crm.mail")
UTC = dt.timezone.utc
MAX_ATTEMPTS = 5
BATCH = 100
PUBLIC_URL_ENV = "CRM_PUBLIC_URL"  # where links in mails point (the site's address)


class NotificationMail:
    def __init__(self, service):
        self.service = service
        self.table = service.schema.engine["notification"]
        config = service.registry.mail
        self.smtp = config.smtp if config is not None and config.notifications else None

    @property
    def enabled(self) -> bool:
        return self.smtp is not None

    def overdue(self, seconds: float) -> bool:
        """Whether a notification has waited `seconds` to be mailed with nobody on it."""
        n = self.table
        at = dt.datetime.now(UTC)
        with self.service.engine.connect() as conn:
            return conn.execute(sa.select(n.c.id).where(
                n.c.mail_state == "pending", n.c.created_at <= at - dt.timedelta(seconds=seconds),
                leases.free(n, at)).limit(1)).first() is not None

    def send(self, ids: list[int] | None, owner: str,
             stopping: Callable[[], bool] | None = None) -> int:
        """Mail the pending notifications among `ids` (all pending when None); return how
        many were sent."""
        if not self.enabled:
            return 0
        n, users = self.table, self.service.users
        at = dt.datetime.now(UTC)
        conditions = [n.c.mail_state == "pending"]
        if ids is not None:
            conditions.append(n.c.id.in_([i for i in ids if isinstance(i, int)]))
        with write_transaction(self.service.engine) as conn:
            claimed = leases.claim_rows(conn, n, conditions, owner, at, BATCH)
            people = {r.id: r for r in conn.execute(sa.select(
                users.c.id, users.c.email, users.c.display_name, users.c.locale).where(
                users.c.id.in_({c["user_id"] for c in claimed}), users.c.active))} \
                if claimed else {}
        sent = 0
        for i, note in enumerate(claimed):
            if stopping is not None and stopping():
                self._mark([c["id"] for c in claimed[i:]], owner, state="pending")
                break
            person = people.get(note["user_id"])
            if person is None or not person.email:
                self._mark([note["id"]], owner, state="skipped")
                continue
            try:
                from engine.mail.send import deliver_smtp
                deliver_smtp(self.smtp, self._compose(note, person), [person.email], os.environ)
            except RecordError as exc:
                attempts = (note["mail_attempts"] or 0) + 1
                log.warning("notification %s to %s not mailed (attempt %d): %s", note["id"],
                            person.email, attempts, exc.message)
                self._mark([note["id"]], owner, attempts=attempts,
                           state="failed" if attempts >= MAX_ATTEMPTS else "pending")
                continue
            self._mark([note["id"]], owner, state="sent")
            sent += 1
        return sent

    def _compose(self, note: dict, person) -> EmailMessage:
        locale = person.locale or (self.service.registry.app.locale
                                   if self.service.registry.app else "en")
        text = Label.of(note["message"], "").get(locale)
        title = Label.of(note["title"], "").get(locale) if note["title"] else text
        message = EmailMessage()
        message["From"] = self.smtp.sender
        message["To"] = formataddr((person.display_name or "", person.email))
        message["Subject"] = title[:200]
        message["Date"] = format_datetime(dt.datetime.now(UTC))
        domain = parseaddr(self.smtp.sender)[1].rpartition("@")[2] or None
        message["Message-ID"] = make_msgid(domain=domain)
        body = text
        base = os.environ.get(PUBLIC_URL_ENV, "").rstrip("/")
        if base and note["entity"] and note["record_id"]:
            body += f"\n\n{base}/{note['entity']}/{note['record_id']}"
        message.set_content(body)
        return message

    def _mark(self, ids: list[int], owner: str, state: str, attempts: int | None = None) -> None:
        n = self.table
        values = {"mail_state": state, "lease_owner": None, "lease_until": None}
        if attempts is not None:
            values["mail_attempts"] = attempts
        with write_transaction(self.service.engine) as conn:
            conn.execute(n.update().where(n.c.id.in_(ids), n.c.lease_owner == owner)
                         .values(values))
