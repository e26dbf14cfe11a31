"""The job queue: Dramatiq on Redis for a fleet, Dramatiq in memory for one process.

Why Dramatiq (docs/deploy.md has the measurements): it is a small, well-kept library whose
Redis broker acknowledges a message only after its job ran and hands the messages of a worker
that stopped sending heartbeats to the others; its workers are threads in one process (our
jobs wait on HTTP and the database, not the CPU); and the same actors run on its in-memory
broker, so `crm serve` on SQLite runs exactly the jobs a fleet runs, with no Redis to set up.
The queue only carries "please do this soon": what is to be done is in the database, and
every job claims it there, so a message delivered twice, or lost, changes nothing but latency
(the scheduler's sweep finds work whose message was lost).

Every message carries the configuration version of the process that sent it; a worker that
is behind catches up before running it (engine/runtime/runner.py).
"""

from __future__ import annotations

import logging
import os
from typing import Callable

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (AgeLimit, Callbacks, CurrentMessage, Pipelines, Retries,
                                 ShutdownNotifications, TimeLimit)

log = logging.getLogger("crm.queue")
BROKER_ENV = "CRM_BROKER_URL"
NAMESPACE_ENV = "CRM_BROKER_NAMESPACE"
MAX_RETRIES = 5  # a job that keeps failing is kept in crm_job_failure after this many tries
MINUTE, HOUR = 60_000, 3_600_000


class Job:
    """What the queue knows of one kind of job: its name, queue and limits."""

    def __init__(self, name: str, queue: str, time_limit_ms: int):
        self.name, self.queue, self.time_limit_ms = name, queue, time_limit_ms


# "default" carries short jobs; long ones go to "bulk", so an import never holds up webhooks
JOBS = {job.name: job for job in (
    Job("webhooks.deliver", "default", 10 * MINUTE),
    Job("webhooks.sweep", "default", 10 * MINUTE),
    Job("automations.tick", "default", 24 * HOUR),
    Job("notifications.mail", "default", 10 * MINUTE),
    Job("mail.fetch", "default", HOUR),
    Job("imports.run", "bulk", 24 * HOUR),
    Job("exports.run", "bulk", 6 * HOUR),
    Job("sharing.rebuild", "bulk", 6 * HOUR),
)}
QUEUES = tuple(sorted({job.queue for job in JOBS.values()}))


def broker_url(explicit: str | None = None) -> str | None:
    """The broker to use: --broker, else $CRM_BROKER_URL; None means in-process."""
    return explicit or os.environ.get(BROKER_ENV) or None


def make_broker(url: str | None, namespace: str = "crm") -> dramatiq.Broker:
    """A Redis broker for `redis://...` URLs, else one in this process's memory."""
    middleware = [AgeLimit(), TimeLimit(), ShutdownNotifications(), Callbacks(), Pipelines(),
                  Retries(max_retries=MAX_RETRIES, min_backoff=1000, max_backoff=5 * MINUTE),
                  CurrentMessage()]
    if url is None or url == "memory":
        return StubBroker(middleware=middleware)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from dramatiq.brokers.redis import RedisBroker
        return RedisBroker(url=url, middleware=middleware,
                           namespace=os.environ.get(NAMESPACE_ENV) or namespace,
                           # a worker silent this long is dead: its messages go to others
                           heartbeat_timeout=30_000)
    raise ValueError(f"unsupported broker URL {url!r}: use redis://host:port/db")


def broker_namespace(app_name: str | None) -> str:
    """Keep each site's messages apart on a shared Redis."""
    return f"crm:{app_name or 'site'}"


class JobQueue:
    """Sends jobs; declares every job as a Dramatiq actor that calls `execute(name, payload)`
    when a worker consumes it (the sender's own process only sends, unless it consumes)."""

    def __init__(self, broker: dramatiq.Broker, execute: Callable[[str, dict], None],
                 version: Callable[[], int]):
        self.broker = broker
        self._version = version
        self.actors = {}
        for job in JOBS.values():
            def run(_job=job.name, **payload):
                execute(_job, payload)
            self.actors[job.name] = dramatiq.actor(
                run, actor_name=job.name, queue_name=job.queue, broker=broker,
                max_retries=MAX_RETRIES, time_limit=job.time_limit_ms)

    @property
    def in_memory(self) -> bool:
        return isinstance(self.broker, StubBroker)

    def send(self, job: str, delay: float | None = None, **payload) -> None:
        """Enqueue `job` (JobSink); `delay` in seconds. A broker that cannot be reached is
        logged, not raised: the work is in the database, and the sweep will find it."""
        payload["config"] = self._version()
        try:
            self.actors[job].send_with_options(
                kwargs=payload, delay=int(delay * 1000) if delay else None)
        except dramatiq.errors.BrokerError as exc:
            log.error("could not enqueue %s (%s); the scheduler's sweep will find the work",
                      job, exc)
        except Exception as exc:  # noqa: BLE001 - redis-py raises its own errors
            log.error("could not enqueue %s (%s: %s); the scheduler's sweep will find the work",
                      job, type(exc).__name__, exc)

    def depth(self) -> dict[str, int]:
        """Messages waiting per queue (delayed ones included)."""
        if self.in_memory:
            sizes = {name: queue.qsize() for name, queue in self.broker.queues.items()}
            return {q: sizes.get(q, 0) + sizes.get(f"{q}.DQ", 0) for q in QUEUES}
        return {q: int(self.broker.do_qsize(q) or 0) for q in QUEUES}

    def ping(self) -> None:
        """Raise unless the broker answers."""
        if not self.in_memory:
            self.broker.client.ping()

    def close(self) -> None:
        self.broker.close()

    def stop(self, timeout: float = 0.0) -> None:
        """What a serving process calls at shutdown (nothing runs here to wait for)."""
        self.close()
