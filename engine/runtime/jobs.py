"""What each background job does. Every one claims its work in the database first, so a job
that runs twice, or on two workers at once, does its work once (see engine/runtime).

A job receives a `JobContext`: the current record service, the lease owner name to claim
with, `stopping()` (true once the worker is shutting down: a long job releases what it holds
and asks for its own continuation), and `send` for follow-up jobs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

from engine.errors import BadRequest
from engine.runtime import metrics

SWEEP_BATCH = 500  # webhook messages one sweep job claims at most
CHUNK = 50  # webhook messages one delivery job takes


@dataclass
class JobContext:
    service: object  # engine.records.service.RecordService
    owner: str
    stopping: Callable[[], bool]
    send: Callable[..., None]


def deliver_webhooks(ctx: JobContext, ids: list[int] | None = None) -> None:
    """Deliver the given messages (claimed here; those another worker holds are left)."""
    if ids is not None and not (isinstance(ids, list) and
                                all(isinstance(i, int) and not isinstance(i, bool) for i in ids)):
        raise BadRequest("ids must be a list of message ids")
    chunks = _chunks(ids, CHUNK) if ids else [None]
    for i, chunk in enumerate(chunks):
        if ctx.stopping():  # the rest goes to another worker at once
            ctx.send("webhooks.deliver", ids=[m for c in chunks[i:] for m in c])
            return
        _follow_up(ctx, ctx.service.webhooks.deliver(chunk, owner=ctx.owner,
                                                     stopping=ctx.stopping, limit=SWEEP_BATCH))


def sweep_webhooks(ctx: JobContext) -> None:
    """Deliver due messages that no job was asked for (a lost message, a retry whose delay
    passed, a worker that died holding them)."""
    _follow_up(ctx, ctx.service.webhooks.deliver(None, owner=ctx.owner, stopping=ctx.stopping,
                                                 limit=SWEEP_BATCH))


def _follow_up(ctx: JobContext, attempts) -> None:
    """Count the attempts; ask for each retry when it is due (the sweep is the safety net)."""
    retries: dict[dt.datetime, list[int]] = {}
    for attempt in attempts:
        metrics.WEBHOOK_ATTEMPTS.labels(attempt.outcome.replace(" ", "_")).inc()
        if attempt.retry_at is not None:
            retries.setdefault(attempt.retry_at, []).append(attempt.message_id)
    now = dt.datetime.now(dt.timezone.utc)
    for at, ids in retries.items():
        ctx.send("webhooks.deliver", delay=max(0.0, (at - now).total_seconds()) + 0.5, ids=ids)


def run_tick(ctx: JobContext, automation: str, tick: str) -> None:
    """Run (or go on with) one schedule tick of `automation`."""
    try:
        at = dt.datetime.fromisoformat(tick)
    except (TypeError, ValueError):
        raise BadRequest(f"tick must be an ISO date and time, not {tick!r}") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.timezone.utc)
    line = ctx.service.automations.run_tick(automation, at, ctx.owner, ctx.stopping)
    if line is None and ctx.stopping():
        ctx.send("automations.tick", automation=automation, tick=tick)


def run_import(ctx: JobContext, job_id: int) -> None:
    """Run (or resume) one import of the admin console's wizard."""
    from engine.records.importjobs import ImportJobs
    outcome = ImportJobs(ctx.service).run(_int(job_id, "job_id"), ctx.owner, ctx.stopping)
    if outcome is None and ctx.stopping():
        ctx.send("imports.run", job_id=job_id)


def run_export(ctx: JobContext, export_id: int) -> None:
    """Write one list export in the background."""
    from engine.records.exportjobs import ExportJobs
    outcome = ExportJobs(ctx.service).run(_int(export_id, "export_id"), ctx.owner, ctx.stopping)
    if outcome is None and ctx.stopping():
        ctx.send("exports.run", export_id=export_id)


def mail_notifications(ctx: JobContext, ids: list[int] | None = None) -> None:
    """Mail in-app notifications to their users (when the site sends mail)."""
    from engine.mail.notify import NotificationMail
    NotificationMail(ctx.service).send(ids, ctx.owner, ctx.stopping)


def fetch_mail(ctx: JobContext, mailbox: str | None = None) -> None:
    """Fetch the configured mailboxes (one fetch per mailbox at a time, fleet-wide)."""
    from engine.mail.fetch import fetch
    from engine.storage.leases import Singleton
    config = ctx.service.registry.mail
    if config is None or not config.mailboxes:
        return
    names = [mailbox] if mailbox else [m.name for m in config.mailboxes]
    singleton = Singleton(ctx.service.engine, ctx.service.schema.engine["lease"])
    for name in names:
        if config.mailbox(name) is None:
            raise BadRequest(f"no mailbox '{name}' in the configuration")
        lease = f"mail.fetch:{name}"
        if not singleton.take(lease, ctx.owner, seconds=30 * 60):
            continue  # another worker is fetching it
        try:
            fetch(ctx.service, name)
        finally:
            singleton.give_back(lease, ctx.owner)


def rebuild_sharing(ctx: JobContext) -> None:
    """Recompute every sharing rule's rows (one rebuild at a time, fleet-wide)."""
    from engine.storage.leases import Singleton
    from engine.storage.sharing import rebuild_all
    service = ctx.service
    singleton = Singleton(service.engine, service.schema.engine["lease"])
    if not singleton.take("sharing.rebuild", ctx.owner, seconds=6 * 3600):
        return
    try:
        rebuild_all(service.engine, service.registry, service.schema)
    finally:
        singleton.give_back("sharing.rebuild", ctx.owner)


def _chunks(items: list, size: int):
    return [items[i:i + size] for i in range(0, len(items), size)]


def _int(value, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"{name} must be a number")
    return value


JOB_FUNCTIONS: dict[str, Callable] = {
    "webhooks.deliver": deliver_webhooks,
    "webhooks.sweep": sweep_webhooks,
    "automations.tick": run_tick,
    "imports.run": run_import,
    "exports.run": run_export,
    "notifications.mail": mail_notifications,
    "mail.fetch": fetch_mail,
    "sharing.rebuild": rebuild_sharing,
}
