"""Outbound webhooks: a transactional outbox, signed deliveries, retries, SSRF protection.

A `webhook` action writes the record's JSON into `crm_outbox` inside the triggering
transaction, so a message exists exactly when the change committed. `deliver_due()` (run by
`crm run-automations` and the server's background thread) POSTs each due message with an
HMAC-SHA256 signature of the body, retries failures with exponential backoff, gives up after
`MAX_ATTEMPTS`, and logs every attempt in `crm_webhook_delivery` for the admin.

Addresses are checked when queued and again before each attempt: only http(s), and never a
private, loopback, link-local or otherwise non-public address unless `app.yaml` lists the host
or its network under `webhook_allow`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import os
import socket
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import sqlalchemy as sa

from engine.errors import ValidationFailed
from engine.records.values import to_json
from engine.storage.database import write_transaction

UTC = dt.timezone.utc
MAX_ATTEMPTS = 8
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
TIMEOUT_SECONDS = 10
SIGNATURE_HEADER = "X-CRM-Signature"


class UnsafeTarget(ValueError):
    """A webhook URL that points where the engine must not send requests."""


def check_target(url: str, allow: tuple[str, ...]) -> None:
    """Refuse URLs that are not http(s) or resolve to non-public addresses (unless allowed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget(f"{url}: only http and https addresses")
    host = parts.hostname.lower()
    if host in allow:
        return
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
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if any(address in network for network in networks):
            continue
        if not address.is_global or address.is_multicast:
            raise UnsafeTarget(f"{url}: {address} is a private, loopback or link-local address "
                               "(list it under webhook_allow in app.yaml to allow it)")


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
        """Queue the record's JSON for `action.url` in the current transaction."""
        try:
            check_target(action.url, self.allow)
        except UnsafeTarget as exc:
            message = f"automation '{automation.name}': webhook refused: {exc}"
            raise ValidationFailed(message, {"__all__": [message]}) from None
        payload = {"automation": automation.name, "entity": entity.name,
                   "record": {k: _plain(entity, k, v) for k, v in record.items()}}
        now = dt.datetime.now(UTC)
        conn.execute(self.outbox.insert().values(
            automation=automation.name, url=action.url, secret_env=action.secret_env,
            body=json.dumps(payload, ensure_ascii=False, sort_keys=True), created_at=now,
            next_attempt_at=now, attempts=0))

    def deliver_due(self, now: dt.datetime | None = None, limit: int = 100) -> list[str]:
        """Try every due message once; return one line per attempt."""
        now = now or dt.datetime.now(UTC)
        with self.service.engine.connect() as conn:
            due = conn.execute(sa.select(self.outbox).where(
                self.outbox.c.delivered_at.is_(None), self.outbox.c.given_up_at.is_(None),
                self.outbox.c.next_attempt_at <= now).order_by(self.outbox.c.id)
                .limit(limit)).mappings().all()
        return [self._attempt(message, now) for message in due]

    def _attempt(self, message, now: dt.datetime) -> str:
        started = time.perf_counter()
        status, error = None, None
        secret = os.environ.get(message["secret_env"])
        body = message["body"].encode()
        try:
            if not secret:
                raise RuntimeError(f"environment variable {message['secret_env']} (the signing "
                                   "key) is not set")
            check_target(message["url"], self.allow)
            request = urllib.request.Request(message["url"], data=body, method="POST", headers={
                "Content-Type": "application/json; charset=utf-8",
                SIGNATURE_HEADER: sign(secret, body), "X-CRM-Delivery": str(message["id"]),
                "User-Agent": "crm-engine-webhook"})
            with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, RuntimeError, UnsafeTarget) as exc:
            error = str(getattr(exc, "reason", exc))
        took = int((time.perf_counter() - started) * 1000)
        delivered = status is not None and 200 <= status < 300
        attempts = message["attempts"] + 1
        values = {"attempts": attempts}
        if delivered:
            values["delivered_at"] = now
        elif attempts >= MAX_ATTEMPTS:
            values["given_up_at"] = now
        else:
            delay = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** (attempts - 1))
            values["next_attempt_at"] = now + dt.timedelta(seconds=delay)
        with write_transaction(self.service.engine) as conn:
            conn.execute(self.outbox.update().where(self.outbox.c.id == message["id"])
                         .values(values))
            conn.execute(self.log.insert().values(outbox_id=message["id"], at=now,
                                                  status=status, error=error,
                                                  duration_ms=took))
        outcome = "delivered" if delivered else ("gave up" if "given_up_at" in values
                                                 else "will retry")
        return f"webhook {message['id']} to {message['url']}: {outcome}" + \
            (f" ({error})" if error else "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could lead to an address the target check refused: treat it as a failure."""

    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _plain(entity, name: str, value):
    field = entity.fields.get(name)
    if isinstance(value, list):
        return [{k: to_json(None, v) for k, v in line.items()} if isinstance(line, dict)
                else to_json(None, line) for line in value]
    return to_json(field, value)
