"""Background work inside the serving process, for a site with no broker (`crm demo`, `crm
serve` on SQLite, one gunicorn machine without Redis).

The same Dramatiq actors as a fleet's, on Dramatiq's in-memory broker, consumed by a few
worker threads of this process, with the scheduler in another thread: a newcomer needs no
Redis, and the jobs are the very ones `crm worker` runs. What is queued in memory is only a
hint, as it is in Redis: the work is in the database, claimed there, and a restart loses
nothing (the scheduler's sweep asks again for work whose hint was lost).
"""

from __future__ import annotations

import logging
import threading

import dramatiq

from engine.runtime.context import Runtime
from engine.runtime.queue import QUEUES, JobQueue, broker_namespace, broker_url, make_broker
from engine.runtime.runner import JobRunner
from engine.runtime.scheduler import DEFAULT_INTERVAL, Scheduler

log = logging.getLogger("crm.runtime")


class EmbeddedRunner:
    """Worker threads (started on the first job) and, once `start_scheduler` is called, the
    scheduler, for one Runtime."""

    def __init__(self, runtime: Runtime, threads: int = 2):
        self.runtime = runtime
        self.threads = threads
        self.stopping = threading.Event()
        self.runner = JobRunner(runtime, self.stopping)
        self.queue = JobQueue(make_broker(None), self.runner.execute, lambda: runtime.version)
        self._worker: dramatiq.Worker | None = None
        self._scheduler: Scheduler | None = None
        self._lock = threading.Lock()
        runtime.use_queue(self)

    # JobSink: the first job starts the threads, so an app that never asks costs nothing
    def send(self, job: str, **payload) -> None:
        self._ensure_worker()
        self.queue.send(job, **payload)

    def depth(self) -> dict[str, int]:
        return self.queue.depth()

    def ping(self) -> None:
        if self.stopping.is_set():
            raise RuntimeError("the in-process worker is stopped")

    def _ensure_worker(self) -> None:
        if self._worker is not None:
            return
        with self._lock:
            if self._worker is None and not self.stopping.is_set():
                worker = dramatiq.Worker(self.queue.broker, queues=set(QUEUES),
                                         worker_threads=self.threads, worker_timeout=100)
                worker.start()
                self._worker = worker

    def start_scheduler(self, interval: float = DEFAULT_INTERVAL) -> "EmbeddedRunner":
        self._ensure_worker()
        if self._scheduler is None:
            self._scheduler = Scheduler(self.runtime, interval).start()
        return self

    def join(self, timeout: float = 30.0) -> None:
        """Wait until every queued job ran (tests, and `crm demo` before it prints)."""
        if self._worker is None:
            return
        for queue in QUEUES:
            self.queue.broker.join(queue, timeout=int(timeout * 1000), fail_fast=False)
        self._worker.join()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the jobs running now (long ones stop at their next checkpoint and hand
        their work back), then release whatever this process still holds."""
        self.stopping.set()
        if self._scheduler is not None:
            self._scheduler.stop()
        if self._worker is not None:
            self._worker.stop(timeout=int(timeout * 1000))
        release_claims(self.runtime)


def start_background(runtime: Runtime, url: str | None = None, threads: int = 2,
                     scheduler: bool = True):
    """The background work of a serving process. With a broker ($CRM_BROKER_URL or `url`)
    the process only sends jobs to it (`crm worker` processes consume them, `crm scheduler`
    asks for due work); without one it runs them itself (EmbeddedRunner, with its
    scheduler). Returns what to `stop()` at shutdown."""
    url = broker_url(url)
    if url is None:
        runner = EmbeddedRunner(runtime, threads)
        return runner.start_scheduler() if scheduler else runner
    app = runtime.registry.app
    queue = JobQueue(make_broker(url, broker_namespace(app.name if app else None)),
                     _consumed_elsewhere, lambda: runtime.version)
    runtime.use_queue(queue)
    return queue


def _consumed_elsewhere(name: str, payload: dict) -> None:
    raise RuntimeError(f"job {name} reached a process that only sends jobs")


def release_claims(runtime: Runtime) -> int:
    """Give back every lease this process holds, so other workers need not wait for them to
    run out; return how many."""
    service = runtime.service
    tables = service.schema.engine
    prefix = f"{runtime.identity}/%"
    released = 0
    from engine.storage.database import write_transaction
    try:
        with write_transaction(service.engine) as conn:
            for name in ("outbox", "automation_tick", "import_job", "export_job",
                         "notification"):
                table = tables[name]
                released += conn.execute(table.update().where(
                    table.c.lease_owner.like(prefix)).values(lease_owner=None,
                                                             lease_until=None)).rowcount
            lease = tables["lease"]
            released += conn.execute(lease.delete().where(lease.c.owner.like(prefix))).rowcount
    except Exception:  # noqa: BLE001 - the leases then run out by themselves
        log.warning("could not release this process's claims; they run out by themselves")
    return released

