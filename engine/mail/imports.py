"""`crm mail import FILE...`: store messages from .eml files (one message) and .mbox files
(many), each message in its own transaction, idempotent on Message-ID like a fetch."""

from __future__ import annotations

import mailbox
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from engine.mail.parse import NotAnEmail, parse
from engine.mail.store import MailStore
from engine.storage.database import write_transaction


@dataclass
class FileResult:
    path: str
    stored: int = 0
    duplicates: int = 0
    failures: list[str] = field(default_factory=list)
    error: str | None = None

    def line(self) -> str:
        if self.error:
            return f"{self.path}: {self.error}"
        return f"{self.path}: {self.stored} new, {self.duplicates} already stored, " \
               f"{len(self.failures)} failed"


def import_files(service, paths: list[str | Path]) -> list[FileResult]:
    """Store the messages of each file; one result per file."""
    store = MailStore(service)
    return [_import_file(store, Path(p)) for p in paths]


def is_mbox(path: Path) -> bool:
    if path.suffix.lower() == ".mbox":
        return True
    if path.suffix.lower() == ".eml":
        return False
    with path.open("rb") as handle:
        return handle.read(5) == b"From "


def _messages(path: Path) -> Iterator[tuple[str, bytes]]:
    if not is_mbox(path):
        yield str(path), path.read_bytes()
        return
    box = mailbox.mbox(path, create=False)
    try:
        for number, key in enumerate(box.iterkeys(), 1):
            yield f"{path} message {number}", box.get_bytes(key)
    finally:
        box.close()


def _import_file(store: MailStore, path: Path) -> FileResult:
    result = FileResult(str(path))
    limit = store.config.max_message_mb * 1024 * 1024
    engine = store.service.engine
    try:
        for source, raw in _messages(path):
            if len(raw) > limit:
                error = f"larger than max_message_mb ({store.config.max_message_mb:g} MB)"
                with write_transaction(engine) as conn:
                    store.failure(conn, source, error, size=len(raw))
                result.failures.append(f"{source}: {error}")
                continue
            try:
                mail = parse(raw, store.config.max_attachment_mb)
                with write_transaction(engine) as conn:
                    outcome = store.store(conn, mail, source="import")
            except Exception as exc:  # noqa: BLE001 - one bad message must not stop the rest
                error = str(exc) if isinstance(exc, NotAnEmail) else \
                    f"could not be stored ({exc.__class__.__name__}: {str(exc)[:300]})"
                with write_transaction(engine) as conn:
                    store.failure(conn, source, error, raw)
                result.failures.append(f"{source}: {error}")
                continue
            if outcome.duplicate:
                result.duplicates += 1
            else:
                result.stored += 1
    except OSError as exc:
        result.error = f"cannot read the file ({exc.strerror or exc})"
    return result
