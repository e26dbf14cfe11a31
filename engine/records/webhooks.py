"""Outbound webhooks: a transactional outbox, signed deliveries, retries, SSRF protection.

A `webhook` action writes the record's JSON into `crm_outbox` inside the triggering
transaction, so a message exists exactly when the change committed; after the commit the
`webhooks.deliver` job is asked for (engine/runtime). `deliver()` claims each due message with a
lease (so two workers never send one message), POSTs it with an HMAC-SHA256 signature of the
body and its delivery id, retries failures with exponential backoff, gives up after
`MAX_ATTEMPTS`, and logs every attempt in `crm_webhook_delivery` for the admin.

Addresses are checked when queued and again before each attempt: only http(s), and never a
private, loopback, link-local or otherwise non-public address unless `app.yaml` lists the host
or its network under `webhook_allow`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import os
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

import sqlalchemy as sa

from engine.errors import ValidationFailed
from engine.records.values import to_json
from engine.storage import leases
from engine.storage.database import AFTER_COMMIT, after_commit, write_transaction

UTC = dt.timezone.utc
MAX_ATTEMPTS = 8
# outcomes written together, in one transaction: a worker that dies after sending sends at
# most these again (the at-least-once window; the receiver drops them by delivery id)
RECORD_EVERY = 20
RECORD_SECONDS = 0.25
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
TIMEOUT_SECONDS = 10
SIGNATURE_HEADER = "X-CRM-Signature"
DELIVERY_HEADER = "X-CRM-Delivery"  # the message id: a receiver drops a delivery it has seen
log = logging.getLogger("crm.webhooks")


class UnsafeTarget(ValueError):
    """A webhook URL that points where the engine must not send requests."""


def check_target(url: str, allow: tuple[str, ...], connect: bool = False) -> list[str]:
    """Refuse URLs that are not http(s) or resolve to non-public addresses (unless allowed);
    return the addresses the host resolved to, all checked: a delivery (`connect`) connects to
    one of these, never resolving the name again (a second answer could point inside). A host
    allowed by name is not resolved unless to connect."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget(f"{url}: only http and https addresses")
    host = parts.hostname.lower()
    if host in allow and not connect:
        return []
    networks = []
    for item in allow:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            continue
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise UnsafeTarget(f"{url}: host does not resolve ({exc.strerror})") from None
    addresses = []
    for info in infos:
        text = info[4][0]
        address = ipaddress.ip_address(text.split("%")[0])
        if host not in allow and not any(address in network for network in networks) and (
                not address.is_global or address.is_multicast):
            raise UnsafeTarget(f"{url}: {address} is a private, loopback or link-local address "
                               "(list it under webhook_allow in app.yaml to allow it)")
        if text not in addresses:
            addresses.append(text)
    return addresses


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhooks:
    """Queues and delivers the webhooks of one RecordService."""

    def __init__(self, service):
        self.service = service
        self.outbox = service.schema.engine["outbox"]
        self.log = service.schema.engine["webhook_delivery"]
        app = service.registry.app
        self.allow = tuple(app.webhook_allow) if app else ()

    def enqueue(self, conn, automation, action, entity, record: dict) -> None:
        """Queue the record's JSON for `action.url` in the current transaction; once it
        commits, ask the job queue to deliver it."""
        try:
            check_target(action.url, self.allow)
        except UnsafeTarget as exc:
            message = f"automation '{automation.name}': webhook refused: {exc}"
            raise ValidationFailed(message, {"__all__": [message]}) from None
        payload = {"automation": automation.name, "entity": entity.name,
                   "record": {k: _plain(entity, k, v) for k, v in record.items()}}
        now = dt.datetime.now(UTC)
        message_id = conn.execute(self.outbox.insert().values(
            automation=automation.name, url=action.url, secret_env=action.secret_env,
            body=json.dumps(payload, ensure_ascii=False, sort_keys=True), created_at=now,
            next_attempt_at=now, attempts=0)).inserted_primary_key[0]
        _NewMessages.of(conn, self.service).ids.append(message_id)

    def overdue(self, seconds: float, now: dt.datetime | None = None) -> bool:
        """Whether a message has been due for `seconds` with nobody sending it (so no job
        was asked for it, or its job was lost: the scheduler then asks for a sweep)."""
        now = now or dt.datetime.now(UTC)
        o = self.outbox
        with self.service.engine.connect() as conn:
            return conn.execute(sa.select(o.c.id).where(
                *self._due(now - dt.timedelta(seconds=seconds)), leases.free(o, now))
                .limit(1)).first() is not None

    def deliver_due(self, now: dt.datetime | None = None, limit: int = 100,
                    owner: str | None = None) -> list[str]:
        """Claim and try every due message once (up to `limit`); return one line per attempt."""
        return [attempt.line() for attempt in self.deliver(None, now, limit, owner)]

    def deliver(self, ids: list[int] | None, now: dt.datetime | None = None,
                limit: int = 100, owner: str | None = None,
                stopping: Callable[[], bool] | None = None) -> list["Attempt"]:
        """Claim the due messages among `ids` (any due message when None), try each once,
        and return the attempts. A message another worker holds is left to it.

        Each result is written with a check that the claim is still this worker's, so two
        workers never both record (or both send, short of one stalling past its lease) the
        same message. `stopping()` true ends the batch early; what was not tried is released.
        """
        now = now or dt.datetime.now(UTC)
        owner = owner or leases.new_identity()
        o = self.outbox
        conditions = list(self._due(now))
        if ids is not None:
            if not ids:
                return []
            conditions.append(o.c.id.in_(ids))
            limit = len(ids)
        with write_transaction(self.service.engine) as conn:
            claimed = leases.claim_rows(conn, o, conditions, owner, now, limit)
        lines, renewed, flushed = [], time.monotonic(), time.monotonic()
        connections, checked, sent = Connections(), {}, []  # kept for this batch
        try:
            for i, message in enumerate(claimed):
                if stopping is not None and stopping():
                    self._release([m["id"] for m in claimed[i:]], owner)
                    break
                if time.monotonic() - renewed > leases.lease_seconds() / 3:
                    with write_transaction(self.service.engine) as conn:
                        leases.renew(conn, o, [m["id"] for m in claimed[i:]], owner)
                    renewed = time.monotonic()
                sent.append(self._send(message, connections, checked))
                if len(sent) >= RECORD_EVERY or time.monotonic() - flushed >= RECORD_SECONDS:
                    lines += self._record(sent, now, owner)
                    sent, flushed = [], time.monotonic()
        finally:
            connections.close()
            if sent:
                lines += self._record(sent, now, owner)
        return lines

    def _due(self, now: dt.datetime):
        o = self.outbox
        return (o.c.delivered_at.is_(None), o.c.given_up_at.is_(None), o.c.next_attempt_at <= now)

    def _release(self, ids: list[int], owner: str) -> None:
        o = self.outbox
        with write_transaction(self.service.engine) as conn:
            conn.execute(o.update().where(o.c.id.in_(ids), o.c.lease_owner == owner)
                         .values(lease_owner=None, lease_until=None))

    def _send(self, message, connections: "Connections", checked: dict) -> "_Sent":
        """POST one message (signed, with its delivery id); what happened, not yet recorded."""
        started = time.perf_counter()
        status, error = None, None
        secret = os.environ.get(message["secret_env"])
        body = message["body"].encode()
        try:
            if not secret:
                raise RuntimeError(f"environment variable {message['secret_env']} (the signing "
                                   "key) is not set")
            url = message["url"]
            if url not in checked:  # once per batch: the batch connects to what it checked
                checked[url] = check_target(url, self.allow, connect=True)
            status = post_to(url, checked[url], body, {
                "Content-Type": "application/json; charset=utf-8",
                SIGNATURE_HEADER: sign(secret, body), DELIVERY_HEADER: str(message["id"]),
                "X-CRM-Attempt": str(message["attempts"] + 1),
                "User-Agent": "crm-engine-webhook"}, connections)
            if not 200 <= status < 300:  # a redirect too: it is not followed
                error = f"HTTP {status}"
        except (OSError, http.client.HTTPException, RuntimeError, UnsafeTarget) as exc:
            error = str(getattr(exc, "reason", exc)) or type(exc).__name__
        return _Sent(message, status, error, int((time.perf_counter() - started) * 1000))

    def _record(self, sent: list["_Sent"], now: dt.datetime, owner: str) -> list["Attempt"]:
        """Write the outcomes of a group of attempts in one transaction, each only where the
        claim is still this worker's (one that stalled past its lease leaves the message to
        the worker that took it over)."""
        o = self.outbox
        kept: dict[int, dict] = {}
        with write_transaction(self.service.engine) as conn:
            delivered = [s.message["id"] for s in sent if s.delivered]
            if delivered:  # the common case, in one statement
                for row in conn.execute(o.update().where(
                        o.c.id.in_(delivered), o.c.lease_owner == owner).values(
                        attempts=o.c.attempts + 1, delivered_at=now, lease_owner=None,
                        lease_until=None).returning(o.c.id)):
                    kept[row.id] = {"delivered_at": now}
            for attempt in (s for s in sent if not s.delivered):
                attempts = attempt.message["attempts"] + 1
                values = {"attempts": attempts, "lease_owner": None, "lease_until": None}
                if attempts >= MAX_ATTEMPTS:
                    values["given_up_at"] = now
                else:
                    delay = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** (attempts - 1))
                    values["next_attempt_at"] = now + dt.timedelta(seconds=delay)
                if conn.execute(o.update().where(o.c.id == attempt.message["id"],
                                                 o.c.lease_owner == owner)
                                .values(values)).rowcount:
                    kept[attempt.message["id"]] = values
            if kept:
                conn.execute(self.log.insert(), [
                    {"outbox_id": s.message["id"], "at": now, "status": s.status,
                     "error": s.error, "duration_ms": s.took}
                    for s in sent if s.message["id"] in kept])
        attempts = []
        for attempt in sent:
            message_id = attempt.message["id"]
            values = kept.get(message_id)
            if values is None:  # stalled past the lease: another worker records the delivery
                log.warning("webhook %s: the claim expired during the attempt; the worker that "
                            "took it over records the delivery", message_id)
                values = {}
            outcome = "delivered" if attempt.delivered else (
                "gave up" if "given_up_at" in values else "will retry")
            attempts.append(Attempt(message_id, attempt.message["url"], outcome, attempt.error,
                                    values.get("next_attempt_at")))
        return attempts


@dataclass(frozen=True)
class _Sent:
    """One POST done, its outcome not yet recorded."""

    message: dict
    status: int | None
    error: str | None
    took: int  # milliseconds

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class Attempt:
    """One try at delivering a message."""

    message_id: int
    url: str
    outcome: str  # delivered | will retry | gave up
    error: str | None
    retry_at: dt.datetime | None  # when it is due again (outcome "will retry")

    def line(self) -> str:
        return f"webhook {self.message_id} to {self.url}: {self.outcome}" + \
            (f" ({self.error})" if self.error else "")


class _NewMessages:
    """The messages queued by one transaction: one job is asked for once it commits."""

    def __init__(self, service):
        self.service, self.ids = service, []

    @classmethod
    def of(cls, conn, service) -> "_NewMessages":
        for callback in conn.info.get(AFTER_COMMIT, ()):
            if isinstance(callback, cls) and callback.service is service:
                return callback
        found = cls(service)
        after_commit(conn, found)
        return found

    def __call__(self) -> None:
        self.service.queue.send("webhooks.deliver", ids=self.ids)


def post_to(url: str, addresses: list[str], body: bytes, headers: dict,
            connections: "Connections | None" = None) -> int:
    """POST `body` to `url`, connecting to the first of `addresses` (checked by
    check_target) that answers; return the HTTP status. The host name still goes in the Host
    header and, for https, in the TLS handshake and the certificate check. No proxy from the
    environment is used and no redirect is followed: either could lead past the check.
    With `connections`, a connection left open by an earlier message to the same address is
    used again (HTTP keep-alive)."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    pool = connections or Connections()
    failure: OSError | None = None
    try:
        for address in addresses:
            key = (https, parts.hostname, port, address)
            for fresh in ((False, True) if pool.has(key) else (True,)):
                connection = pool.get(key, fresh)
                try:
                    connection.request("POST", path, body=body, headers=headers)
                    response = connection.getresponse()
                    response.read(64 * 1024)
                    if response.will_close:
                        pool.drop(key)
                    return response.status
                except (http.client.RemoteDisconnected, ConnectionResetError,
                        BrokenPipeError) as exc:
                    # a kept connection the receiver had closed meanwhile: once more, anew
                    pool.drop(key)
                    if fresh:
                        raise
                    failure = exc
                except ConnectionRefusedError as exc:  # this address is down: try the next
                    pool.drop(key)
                    failure = exc
                    break
                except BaseException:
                    pool.drop(key)
                    raise
    finally:
        if connections is None:
            pool.close()
    raise failure or OSError(f"{parts.hostname}: no address to connect to")


class Connections:
    """Open connections of one batch of deliveries, by (https, host, port, address)."""

    def __init__(self):
        self._open: dict[tuple, http.client.HTTPConnection] = {}

    def has(self, key) -> bool:
        return key in self._open

    def get(self, key, fresh: bool) -> http.client.HTTPConnection:
        if fresh or key not in self._open:
            self.drop(key)
            https, host, port, address = key
            self._open[key] = (_PinnedHTTPS if https else _PinnedHTTP)(host, port, address,
                                                                     TIMEOUT_SECONDS)
        return self._open[key]

    def drop(self, key) -> None:
        connection = self._open.pop(key, None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        for key in list(self._open):
            self.drop(key)


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to a given address, whatever the name resolves to now."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        self.sock = _connected(self.address, self.port, self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection to a given address, verifying the certificate for the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self):
        sock = _connected(self.address, self.port, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _connected(address: str, port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection((address, port), timeout)
    # a kept-alive connection sends small requests back to back: without this, Nagle's
    # algorithm and the receiver's delayed ACK hold each one up to 40 ms
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _plain(entity, name: str, value):
    field = entity.fields.get(name)
    if isinstance(value, list):
        return [{k: to_json(None, v) for k, v in line.items()} if isinstance(line, dict)
                else to_json(None, line) for line in value]
    return to_json(field, value)
