"""Inbound webhooks: signed POSTs from another system that change records (docs/processes.md).

A sender (a payment system, an ERP) posts JSON to its source's endpoint. The request is
accepted only with a valid HMAC-SHA256 signature of the raw body (and, if configured, a fresh
timestamp that the signature covers). The source's mapping then finds one record by `match`,
stores `set` values and may fire a transition, through the record service as a system caller,
so every validation, automation and audit rule holds. Each sender's event id is claimed in
`crm_inbound_event` in the same transaction as the change: a repeated event is answered with
the first outcome and writes nothing, and a refused change claims nothing, so the sender may
retry it once the cause is fixed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Mapping

import sqlalchemy as sa

from engine.errors import BadRequest, Conflict, NotFound, RecordError, ValidationFailed
from engine.records.access import SYSTEM, Caller
from engine.records.values import Invalid, coerce
from engine.registry.model import InboundSource
from engine.storage.database import write_transaction

UTC = dt.timezone.utc
MAX_EVENT_ID = 200
_MISSING = object()
log = logging.getLogger(__name__)


class Unauthorized(RecordError):
    """A request whose signature (or timestamp) does not prove it comes from the sender."""

    status, code = 401, "unauthorized"


@dataclass(frozen=True)
class Receipt:
    """What the sender is told: the outcome of the event, and whether it was seen before."""

    outcome: dict
    replayed: bool = False


def lookup(body: Any, path: tuple[str, ...]) -> Any:
    """Return the value at `path` in a JSON body, or `_MISSING`; a digit key indexes a list."""
    value = body
    for key in path:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return _MISSING
    return value


def show(path: tuple[str, ...]) -> str:
    return "$." + ".".join(path)


def signature(secret: str, body: bytes, timestamp: str | None = None) -> str:
    """Return the hex HMAC-SHA256 a sender puts in its signature header (without `sha256=`)."""
    signed = body if timestamp is None else timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


class Inbound:
    """Receives the inbound webhooks of one RecordService."""

    def __init__(self, service):
        self.service = service
        self.registry = service.registry
        self.events = service.schema.engine["inbound_event"]
        app = service.registry.app
        self.locale = app.locale if app else "en"

    def source(self, name: str) -> InboundSource:
        source = self.registry.inbound.get(name)
        if source is None:
            raise NotFound(f"no inbound source '{name}'")
        return source

    # ------------------------------------------------------------------ authenticity

    def verify(self, source: InboundSource, headers: Mapping[str, str], body: bytes,
               now: float | None = None) -> None:
        """Refuse (Unauthorized) a request not signed with the source's secret, or too old."""
        secret = os.environ.get(source.secret_env)
        if not secret:
            log.error("inbound source %s: environment variable %s (the shared secret) is not "
                      "set; every request is refused", source.name, source.secret_env)
            raise Unauthorized("the signature cannot be verified")
        stamp = None
        if source.timestamp_header:
            stamp = (headers.get(source.timestamp_header) or "").strip()
            if not stamp.isdigit():
                raise Unauthorized(f"send the time of sending in {source.timestamp_header} "
                                   "(Unix seconds)")
        sent = (headers.get(source.signature_header) or "").strip()
        if sent[:7].lower() == "sha256=":
            sent = sent[7:]
        expected = signature(secret, body, stamp).encode()
        if not sent or not hmac.compare_digest(expected, sent.lower().encode("utf-8", "ignore")):
            raise Unauthorized(f"the {source.signature_header} signature does not match")
        if stamp is not None:
            now = time.time() if now is None else now
            if abs(now - int(stamp)) > source.tolerance:
                raise Unauthorized(f"the {source.timestamp_header} time is more than "
                                   f"{source.tolerance} seconds from now")

    def event_id(self, source: InboundSource, headers: Mapping[str, str], body: dict) -> str:
        """Return the sender's id of this event; a request without one is a BadRequest."""
        if source.event_id_header:
            value, where = headers.get(source.event_id_header), source.event_id_header
        else:
            value, where = lookup(body, source.event_id_path), show(source.event_id_path)
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
            raise BadRequest(f"no event id at {where}", {"event_id": [f"missing at {where}"]})
        text = str(value).strip()
        if not text or len(text) > MAX_EVENT_ID:
            raise BadRequest(f"the event id at {where} must be 1 to {MAX_EVENT_ID} characters",
                             {"event_id": [f"must be 1 to {MAX_EVENT_ID} characters"]})
        return text

    # ------------------------------------------------------------------ processing

    def receive(self, source: InboundSource, event_id: str, body: dict) -> Receipt:
        """Apply one verified event once; a repeated event id gets the first outcome back."""
        previous = self._previous(source, event_id)
        if previous is not None:
            return Receipt(previous, replayed=True)
        try:
            with write_transaction(self.service.engine) as conn:
                self._claim(conn, source, event_id)
                outcome = self._apply(conn, source, body)
                conn.execute(self.events.update().where(
                    self.events.c.source == source.name, self.events.c.event_id == event_id)
                    .values(record_id=outcome["id"], outcome=outcome))
        except _Claimed:  # the same event arrived twice at once: the other one did it
            previous = self._previous(source, event_id)
            if previous is None:
                raise Conflict("this event is being processed; send it again later") from None
            return Receipt(previous, replayed=True)
        return Receipt(outcome)

    def _previous(self, source: InboundSource, event_id: str) -> dict | None:
        with self.service.engine.connect() as conn:
            return conn.execute(sa.select(self.events.c.outcome).where(
                self.events.c.source == source.name,
                self.events.c.event_id == event_id)).scalar()

    def _claim(self, conn, source: InboundSource, event_id: str) -> None:
        """Insert the event's row first: a concurrent copy of it waits here, then fails."""
        try:
            conn.execute(self.events.insert().values(
                source=source.name, event_id=event_id, received_at=dt.datetime.now(UTC),
                entity=source.entity, outcome={}))
        except sa.exc.IntegrityError:
            raise _Claimed() from None

    def caller(self, source: InboundSource) -> Caller:
        """The engine acting for the sender: every permission, no user, named after it."""
        return Caller(user_id=None, roles=("admin",), locale=self.locale,
                      username=f"inbound:{source.name}", display_name=source.label.get("en"),
                      system=True)

    def _apply(self, conn, source: InboundSource, body: dict) -> dict:
        service = self.service
        entity = self.registry.entities[source.entity]
        caller = self.caller(source)
        raw_match = {}
        for name, path in source.match.items():
            value = lookup(body, path)
            if value is _MISSING or value is None or value == "":
                raise BadRequest(f"no value at {show(path)} to find the record by",
                                 {name: [f"missing at {show(path)}"]})
            raw_match[name] = value
        record_id = self._find(conn, entity, raw_match, caller)
        values = {name: value for name, path in source.set.items()
                  if (value := lookup(body, path)) is not _MISSING}
        action = "unchanged"
        if record_id is None:
            if not source.create_if_missing:
                raise NotFound(f"no {entity.name} with " + ", ".join(
                    f"{k} = {v!r}" for k, v in raw_match.items()))
            # read-only fields are the sender's to set, not a user's: stored after creation
            later = {k: v for k, v in values.items() if entity.fields[k].read_only}
            created = service.create(caller, entity.name, {**raw_match, **{
                k: v for k, v in values.items() if k not in later}}, conn=conn)
            record_id, action, values = created["id"], "created", later
        if values:
            current = service.get(SYSTEM, entity.name, record_id, conn=conn)
            prepared, _, errors = service._prepare(conn, caller, entity,
                                                   service.access(caller, entity), values,
                                                   current, trusted=True)
            service._raise(caller, errors)
            if any(current.get(k) != v for k, v in prepared.items()):
                service._save(conn, caller, entity, current, prepared, {},
                              f"inbound:{source.name}")
                action = "updated" if action == "unchanged" else action
        fired = None
        if source.transition and all(lookup(body, path) == expected
                                     for path, expected in source.transition_when.items()):
            try:
                service.transition(caller, entity.name, record_id, source.transition,
                                   conn=conn)
                fired = source.transition
            except Conflict:
                pass  # not possible from the record's state (already paid...): nothing to do
        return {"entity": entity.name, "id": record_id, "action": action, "transition": fired}

    def _find(self, conn, entity, raw_match: dict, caller: Caller) -> int | None:
        table = self.service.schema.entities[entity.name]
        conditions = [table.c.deleted_at.is_(None)]
        for name, raw in raw_match.items():
            try:
                value = coerce(entity.fields[name], raw)
            except Invalid as exc:
                raise ValidationFailed(f"{name}: {exc.message.render(caller.locale)}",
                                       {name: [exc.message.render(caller.locale)]}) from None
            conditions.append(table.c[name] == value)
        ids = [r[0] for r in conn.execute(sa.select(table.c.id).where(*conditions)
                                          .order_by(table.c.id).limit(2))]
        if len(ids) > 1:
            raise Conflict(f"more than one {entity.name} matches; match a unique field")
        return ids[0] if ids else None


class _Claimed(Exception):
    """Another request holds (or committed) the same event id."""
