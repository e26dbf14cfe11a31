"""How a background job runs in a worker: on the configuration that enqueued it (or a newer
one), with its failures kept where the admin sees them, and counted.

- A message enqueued under a configuration version newer than the worker's makes the worker
  catch up first; while it cannot (its site folder differs), the job waits and is retried.
- A job the configuration refuses (an automation, entity or mailbox that is gone, a payload
  of the wrong shape: a RecordError) fails at once: it is kept in `crm_job_failure`, logged
  and counted, never retried.
- Any other error is retried with backoff by Dramatiq; the last attempt's failure is kept
  the same way. A job is never dropped silently.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import threading
import time
import traceback
import uuid

import dramatiq
from dramatiq.middleware import CurrentMessage

from engine.errors import RecordError
from engine.runtime import metrics
from engine.runtime.context import Runtime
from engine.runtime.jobs import JOB_FUNCTIONS, JobContext
from engine.runtime.queue import MAX_RETRIES
from engine.storage.database import write_transaction

log = logging.getLogger("crm.jobs")
UTC = dt.timezone.utc
CONFIG_WAIT_MS = 2000


class ConfigurationBehind(Exception):
    """The job was enqueued under a configuration this worker cannot load yet."""


class JobRunner:
    """Runs the jobs a queue hands over, in one process, for one Runtime."""

    def __init__(self, runtime: Runtime, stopping: threading.Event | None = None):
        self.runtime = runtime
        self.stopping = stopping or threading.Event()
        self.done = self.failed = 0
        self._count_lock = threading.Lock()

    def execute(self, name: str, payload: dict) -> None:
        """Run job `name` (the actor body); raise only for Dramatiq to retry it."""
        payload = dict(payload)
        enqueued_under = payload.pop("config", 0)
        runtime = self.runtime
        if isinstance(enqueued_under, int) and enqueued_under > runtime.version:
            runtime.refresh(force=True)
        else:
            runtime.refresh()
        attempt = _attempt()
        started = time.perf_counter()
        try:
            if isinstance(enqueued_under, int) and enqueued_under > runtime.version:
                raise ConfigurationBehind(
                    f"enqueued under configuration version {enqueued_under}, but this worker "
                    f"has version {runtime.version}: {'; '.join(runtime.problems()) or '-'}")
            function = JOB_FUNCTIONS[name]
            context = JobContext(runtime.service, f"{runtime.identity}/{uuid.uuid4().hex[:8]}",
                                 self.stopping.is_set, runtime.queue.send)
            try:
                inspect.signature(function).bind(context, **payload)
            except TypeError as exc:
                raise _Refused(f"the payload does not fit the job: {exc}") from None
            function(context, **payload)
        except (RecordError, _Refused) as exc:
            message = getattr(exc, "message", None) or str(exc)
            self._failed(name, payload, enqueued_under, attempt, message, "refused")
            return
        except Exception as exc:  # noqa: BLE001 - retried by Dramatiq; kept after the last try
            outcome = "waiting_for_configuration" if isinstance(exc, ConfigurationBehind) \
                else "retried"
            if attempt > MAX_RETRIES:
                self._failed(name, payload, enqueued_under, attempt,
                             f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=20)}",
                             "failed")
                return
            metrics.JOBS.labels(name, outcome).inc()
            log.warning("job %s failed (attempt %d of %d), retrying: %s: %s", name, attempt,
                        MAX_RETRIES + 1, type(exc).__name__, exc)
            if isinstance(exc, ConfigurationBehind):
                raise dramatiq.Retry(delay=CONFIG_WAIT_MS) from None
            raise
        finally:
            metrics.JOB_SECONDS.labels(name).observe(time.perf_counter() - started)
        metrics.JOBS.labels(name, "done").inc()
        with self._count_lock:
            self.done += 1

    def _failed(self, name: str, payload: dict, version, attempt: int, error: str,
                outcome: str) -> None:
        metrics.JOBS.labels(name, outcome).inc()
        with self._count_lock:
            self.failed += 1
        log.error("job %s %s for good after %d attempts: %s", name,
                  "was refused" if outcome == "refused" else "failed", attempt,
                  error.splitlines()[0] if error else "-")
        service = self.runtime.service
        try:
            with write_transaction(service.engine) as conn:
                conn.execute(service.schema.engine["job_failure"].insert().values(
                    job=name, payload=_jsonable(payload), error=error[:8000], attempts=attempt,
                    config_version=version if isinstance(version, int) else None,
                    worker=self.runtime.identity, at=dt.datetime.now(UTC)))
        except Exception:  # noqa: BLE001 - the log line above is then the only trace
            log.exception("could not record the failure of job %s", name)


class _Refused(Exception):
    pass


def _attempt() -> int:
    """Which try this is (1 for the first), from the message Dramatiq is running."""
    message = CurrentMessage.get_current_message()
    if message is None:
        return 1
    return int(message.options.get("retries", 0)) + 1


def _jsonable(payload: dict) -> dict:
    import json
    try:
        json.dumps(payload)
        return payload
    except (TypeError, ValueError):
        return {"repr": repr(payload)[:2000]}
