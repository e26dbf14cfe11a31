"""The compiled `mail:` configuration (docs/mail.md): mailboxes, SMTP, and how a message is
linked to records. Built by engine/check/mail.py; read by engine/mail."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_ATTACHMENT_MB = 10.0
DEFAULT_MAX_MESSAGE_MB = 50.0


@dataclass(frozen=True)
class Mailbox:
    """An IMAP account and the folders fetched from it."""

    name: str
    host: str
    port: int
    tls: str  # ssl | starttls | none
    user: str
    password_env: str
    folders: tuple[str, ...]


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    tls: str
    user: str | None
    password_env: str | None
    sender: str  # `from:` as written: "Name <address>" or an address


@dataclass(frozen=True)
class AddressMatch:
    """Records of `entity` whose email `field` equals an address of a message are linked;
    so are the records their `follow` reference fields point at."""

    entity: str
    field: str
    follow: tuple[tuple[str, str], ...] = ()  # (reference field, target entity)


@dataclass(frozen=True)
class SubjectRef:
    """`[value]` in a subject links the message to the record of `entity` whose `field` has
    that value; for `field == "id"` the token is `[entity#id]`."""

    entity: str
    field: str


@dataclass(frozen=True)
class MailConfig:
    matches: tuple[AddressMatch, ...]
    subject_refs: tuple[SubjectRef, ...]
    own_addresses: frozenset[str]  # lower-case addresses
    own_domains: frozenset[str]  # lower-case domains, without "@"
    max_attachment_mb: float = DEFAULT_MAX_ATTACHMENT_MB
    max_message_mb: float = DEFAULT_MAX_MESSAGE_MB
    mailboxes: tuple[Mailbox, ...] = ()
    smtp: Smtp | None = None
    fetch_every_minutes: int = 5  # background fetches of the mailboxes; 0: none
    notifications: bool = False  # mail in-app notifications to their users

    @property
    def entities(self) -> tuple[str, ...]:
        """The entities mail can be linked to, so whose pages show it, in a stable order."""
        names = [m.entity for m in self.matches]
        names += [target for m in self.matches for _, target in m.follow]
        names += [r.entity for r in self.subject_refs]
        return tuple(dict.fromkeys(names))

    def is_own(self, address: str) -> bool:
        address = address.lower()
        return address in self.own_addresses or \
            address.rpartition("@")[2] in self.own_domains

    def mailbox(self, name: str) -> Mailbox | None:
        return next((m for m in self.mailboxes if m.name == name), None)
