"""`crm worker`: one process consuming the job queue on Redis (any number of them, on any
number of machines), and `crm scheduler`.

The process runs a Dramatiq worker (threads), keeps a heartbeat row in `crm_worker` for the
admin console, follows the fleet's configuration version, and on SIGTERM or SIGINT shuts
down gracefully: it stops taking messages, lets each running job finish or stop at its next
checkpoint (a long one hands the rest of its work back through the queue), waits up to
`shutdown_seconds`, gives back every lease it still holds, and exits 0.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
import threading

import dramatiq

from engine.runtime.context import Runtime
from engine.runtime.embedded import release_claims
from engine.runtime.queue import QUEUES, JobQueue, broker_namespace, make_broker
from engine.runtime.runner import JobRunner
from engine.runtime.scheduler import Scheduler
from engine.storage.database import insert_or_merge, write_transaction

log = logging.getLogger("crm.worker")
UTC = dt.timezone.utc
HEARTBEAT_SECONDS = 5.0
IDLE_POLL_MS = 100


class WorkerProcess:
    def __init__(self, runtime: Runtime, broker_url: str, queues: tuple[str, ...] = QUEUES,
                 threads: int = 8, scheduler_interval: float | None = None,
                 metrics_port: int | None = None, shutdown_seconds: float = 30.0,
                 consume: bool = True):
        self.runtime = runtime
        self.queues = tuple(queues)
        self.threads = threads
        self.consume = consume
        self.shutdown_seconds = shutdown_seconds
        self.metrics_port = metrics_port
        self.stopping = threading.Event()
        self._stop = threading.Event()
        self.runner = JobRunner(runtime, self.stopping)
        app = runtime.registry.app
        broker = make_broker(broker_url, broker_namespace(app.name if app else None))
        self.queue = JobQueue(broker, self.runner.execute, lambda: runtime.version)
        runtime.use_queue(self.queue)
        self.scheduler = Scheduler(runtime, scheduler_interval) \
            if scheduler_interval is not None else None
        self.kind = "worker" if consume else "scheduler"

    def run(self) -> int:
        """Work until SIGTERM or SIGINT; return the exit status."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        self.queue.ping()  # fail at once, with the broker named, if it cannot be reached
        if self.metrics_port:
            from prometheus_client import REGISTRY, start_http_server
            from engine.runtime.metrics import WorkCollector
            from engine.runtime.status import waiting_work
            REGISTRY.register(WorkCollector(self.queue.depth, lambda: waiting_work(
                self.runtime.service)))
            start_http_server(self.metrics_port)
        worker = None
        if self.consume:
            # an idle consumer looks for new messages every IDLE_POLL_MS (Dramatiq's default,
            # a second, would add up to a second to every job that finds the queue empty)
            worker = dramatiq.Worker(self.queue.broker, queues=set(self.queues),
                                     worker_threads=self.threads, worker_timeout=IDLE_POLL_MS)
            worker.start()
        if self.scheduler is not None:
            self.scheduler.start()
        log.info("%s %s started (queues %s, configuration version %s)", self.kind,
                 self.runtime.identity, ", ".join(self.queues) if self.consume else "-",
                 self.runtime.version)
        self._beat()
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self.runtime.refresh()
                self._beat()
            except Exception:  # noqa: BLE001 - a database hiccup; the next beat tries again
                log.exception("heartbeat failed")
        log.info("%s %s stopping: finishing the jobs in hand (up to %.0f s)", self.kind,
                 self.runtime.identity, self.shutdown_seconds)
        self.stopping.set()
        if self.scheduler is not None:
            self.scheduler.stop()
        if worker is not None:
            worker.stop(timeout=int(self.shutdown_seconds * 1000))
        released = release_claims(self.runtime)
        self._beat(stopped=True)
        self.queue.close()
        log.info("%s %s stopped (%d claims given back)", self.kind, self.runtime.identity,
                 released)
        return 0

    def _on_signal(self, signum, frame) -> None:
        if self._stop.is_set():  # a second signal: do not wait any more
            log.warning("second signal: exiting now; leases run out by themselves")
            os._exit(1)
        self._stop.set()

    def _beat(self, stopped: bool = False) -> None:
        service = self.runtime.service
        table = service.schema.engine["worker"]
        at = dt.datetime.now(UTC)
        values = {"seen_at": at, "config_version": self.runtime.version,
                  "jobs_done": self.runner.done, "jobs_failed": self.runner.failed,
                  "stopped_at": at if stopped else None}
        with write_transaction(service.engine) as conn:
            conn.execute(insert_or_merge(conn, table).values(
                id=self.runtime.identity, host=socket.gethostname()[:255], pid=os.getpid(),
                kind=self.kind, queues=list(self.queues) if self.consume else [],
                started_at=at, **values).on_conflict_do_update(
                index_elements=["id"], set_=values))
