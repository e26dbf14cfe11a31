"""Read one email (RFC 5322 bytes) into what the engine stores: addresses, thread headers,
text, sanitized HTML and attachments, plus notes on whatever had to be left out.

Python's `email` package is lenient: nearly any bytes parse into some message. A header or
part that cannot be read is noted as a problem and the rest is kept; only bytes that are no
email at all (none of From, Date, Subject, Message-ID) raise `NotAnEmail`, so the caller logs
a failure instead of storing an empty message.
"""

from __future__ import annotations

import datetime as dt
import email
import hashlib
import html
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

import nh3

from engine.records.uploads import clean_name, sniff

UTC = dt.timezone.utc
MSGID = re.compile(r"<[^<>\s]{1,480}>")
MAX_TEXT = 1_000_000  # characters of a body kept (a longer one is cut, and noted)
# HTML kept from a message: structure and links, no scripts, styles, forms or remote images
# (images fetched from elsewhere are read receipts: "tracking pixels")
HTML_TAGS = {"a", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "hr",
             "i", "li", "ol", "p", "pre", "span", "strong", "table", "tbody", "td", "th",
             "thead", "tr", "u", "ul", "font", "center", "small", "sub", "sup"}
HTML_ATTRIBUTES = {"a": {"href", "title"}, "td": {"colspan", "rowspan"},
                   "th": {"colspan", "rowspan"}}


class NotAnEmail(ValueError):
    """Bytes that hold no email at all, or that the parser could not read."""


@dataclass(frozen=True)
class Address:
    name: str
    address: str  # lower-cased

    def json(self) -> dict:
        return {"name": self.name, "address": self.address}


@dataclass(frozen=True)
class MailAttachment:
    name: str
    content_type: str
    data: bytes


@dataclass
class ParsedMail:
    message_id: str
    in_reply_to: str | None
    references: tuple[str, ...]
    sender: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    subject: str
    sent_at: dt.datetime | None
    text: str
    html: str | None
    attachments: list[MailAttachment]
    size: int
    problems: list[str] = field(default_factory=list)

    def addresses(self) -> list[str]:
        """Every address of the message, sender first, without repeats."""
        found = ([self.sender] if self.sender else []) + list(self.to) + list(self.cc)
        return list(dict.fromkeys(a.address for a in found if a.address))


def parse(raw: bytes, max_attachment_mb: float) -> ParsedMail:
    """Parse a message; raise NotAnEmail for bytes that are not one."""
    if not raw or not raw.strip():
        raise NotAnEmail("the message is empty")
    try:
        msg = email.message_from_bytes(raw, policy=policy.default)
    except Exception as exc:  # the parser itself failed: nothing to keep but the bytes
        raise NotAnEmail(f"the message cannot be parsed ({exc.__class__.__name__}: {exc})")
    problems: list[str] = []
    heads = {name: _header(msg, name, problems) for name in
             ("Message-ID", "In-Reply-To", "References", "From", "To", "Cc", "Subject", "Date")}
    if not any(heads[n] for n in ("From", "Date", "Subject", "Message-ID")):
        raise NotAnEmail("no From, Date, Subject or Message-ID header: not an email")
    ids = MSGID.findall(heads["Message-ID"] or "")
    if ids:
        message_id = ids[0]
    else:
        # a stable stand-in, so importing the same file twice still finds the first copy
        message_id = f"<{hashlib.sha256(raw).hexdigest()[:40]}@no-message-id.invalid>"
        problems.append("no Message-ID header: an identifier was made from the content")
    reply = MSGID.findall(heads["In-Reply-To"] or "")
    references = tuple(dict.fromkeys(MSGID.findall(heads["References"] or "")))
    senders = _addresses(heads["From"])
    text, html_body = _bodies(msg, problems)
    return ParsedMail(
        message_id=message_id, in_reply_to=reply[0] if reply else None, references=references,
        sender=senders[0] if senders else None, to=tuple(_addresses(heads["To"])),
        cc=tuple(_addresses(heads["Cc"])), subject=" ".join((heads["Subject"] or "").split()),
        sent_at=_date(heads["Date"], problems), text=text, html=html_body,
        attachments=_attachments(msg, max_attachment_mb, problems), size=len(raw),
        problems=problems)


def _header(msg: EmailMessage, name: str, problems: list[str]) -> str:
    """A header's decoded text ('' when absent); a header the parser cannot decode is read
    raw, with a note."""
    try:
        values = msg.get_all(name) or []
        return " ".join(str(v) for v in values).strip()
    except Exception:
        raw = [v for k, v in msg.raw_items() if k.lower() == name.lower()]
        problems.append(f"the {name} header could not be decoded; kept as written")
        return " ".join(str(v) for v in raw).strip()


def _addresses(text: str) -> list[Address]:
    result = []
    for name, address in getaddresses([text]) if text else ():
        address = address.strip().lower()
        if "@" in address:
            result.append(Address(" ".join(name.split())[:300], address[:320]))
    return result


def _date(text: str, problems: list[str]) -> dt.datetime | None:
    if not text:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        problems.append(f"unreadable Date header '{text[:80]}'; the time it was stored is used")
        return None
    # a date without a zone ("-0000") is taken as UTC
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def _content(part, problems: list[str]) -> str:
    try:
        return part.get_content()
    except Exception:  # unknown charset, broken transfer encoding
        data = part.get_payload(decode=True) or b""
        problems.append(f"a {part.get_content_type()} part has an unknown or broken encoding; "
                        "read as UTF-8")
        return data.decode("utf-8", "replace")


def _bodies(msg: EmailMessage, problems: list[str]) -> tuple[str, str | None]:
    """The text to show and search, and the sanitized HTML (None without an HTML part)."""
    plain = html_part = None
    try:
        plain = msg.get_body(preferencelist=("plain",))
        html_part = msg.get_body(preferencelist=("html",))
    except Exception:
        problems.append("the message's structure could not be read; its body may be missing")
    raw_html = _content(html_part, problems) if html_part is not None else None
    cleaned = sanitize(raw_html) if raw_html else None
    if plain is not None:
        text = _content(plain, problems)
    elif cleaned:
        text = html_text(cleaned)
    else:
        text = ""
    if len(text) > MAX_TEXT:
        problems.append(f"the text is longer than {MAX_TEXT} characters; the rest is left out")
        text = text[:MAX_TEXT]
    return text.replace("\r\n", "\n"), cleaned


def sanitize(raw_html: str) -> str:
    """HTML safe to show inside a page: no scripts, styles, event handlers, forms, frames or
    remote images; links keep only http(s) and mailto addresses."""
    return nh3.clean(raw_html, tags=HTML_TAGS, attributes=HTML_ATTRIBUTES,
                     url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer")


def html_text(cleaned: str) -> str:
    """Plain text from sanitized HTML: line breaks for blocks, tags removed."""
    text = re.sub(r"(?i)<br\s*/?>|</(p|div|tr|li|h[1-4])>", "\n", cleaned)
    text = nh3.clean(text, tags=set())
    return re.sub(r"\n{3,}", "\n\n", html.unescape(text)).strip()


def _leaves(part):
    """Every leaf part; an attached message (message/rfc822) is one leaf, kept whole."""
    if part.get_content_type() == "message/rfc822" or not part.is_multipart():
        yield part
        return
    for sub in part.iter_parts():
        yield from _leaves(sub)


def _attachments(msg: EmailMessage, max_mb: float, problems: list[str]) -> list[MailAttachment]:
    try:
        bodies = {id(p) for p in (msg.get_body(preferencelist=("plain",)),
                                  msg.get_body(preferencelist=("html",))) if p is not None}
        leaves = [p for p in _leaves(msg) if id(p) not in bodies]
    except Exception:
        return []
    limit = max_mb * 1024 * 1024
    found = []
    for number, part in enumerate(leaves, 1):
        kind = part.get_content_type()
        filename = _filename(part)
        if not filename and part.get_content_disposition() != "attachment" and \
                kind.startswith(("text/", "multipart/")):
            continue  # an alternative body nobody chose (a nested text part), not a file
        try:
            if kind == "message/rfc822":
                data = part.get_payload(0).as_bytes()
            else:
                data = part.get_payload(decode=True) or b""
        except Exception:
            problems.append(f"attachment '{filename or number}' could not be decoded; left out")
            continue
        name = clean_name(filename or f"attachment-{number}{_extension(kind)}")
        if len(data) > limit:
            problems.append(f"attachment '{name}' ({len(data) / 1024 / 1024:.1f} MB) is larger "
                            f"than the {max_mb:g} MB limit; left out")
            continue
        if not data:
            problems.append(f"attachment '{name}' is empty; left out")
            continue
        found.append(MailAttachment(name, sniff(data), data))
    return found


def _filename(part) -> str:
    try:
        return part.get_filename() or ""
    except Exception:
        return ""


def _extension(kind: str) -> str:
    return {"message/rfc822": ".eml", "image/png": ".png", "image/jpeg": ".jpg",
            "image/gif": ".gif", "application/pdf": ".pdf"}.get(kind, "")


def address_of(text: str) -> str:
    """The address of `Name <address>` or of an address, lower-cased ('' for none)."""
    address = parseaddr(text)[1].strip().lower()
    return address if "@" in address else ""
