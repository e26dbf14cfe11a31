"""One process's view of a site: the configuration it serves and follows.

`crm migrate` records every configuration it applies in `crm_config`: the row's id is the
version, with the configuration's fingerprint (engine/config/layers.py). Every process — app
server or worker, on any machine — checks that version (at most every `poll_seconds`, and
whenever a job says it was enqueued under a newer one) and, when it has moved on, reads its
site folder again and swaps its registry and record service whole. A process whose files do
not give the applied fingerprint (its folder or engine version differs from the machine that
applied it) keeps what it has and says so: `problems()` is what /readyz reports.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import sqlalchemy as sa

from engine.records.jobsink import UNSENT, JobSink
from engine.records.service import RecordService
from engine.registry.model import Registry
from engine.storage import leases
from engine.storage.migrate import AppliedVersion, applied_version

log = logging.getLogger("crm.runtime")
POLL_ENV = "CRM_CONFIG_POLL_SECONDS"
DEFAULT_POLL_SECONDS = 1.0


def poll_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(POLL_ENV, DEFAULT_POLL_SECONDS)))
    except ValueError:
        return DEFAULT_POLL_SECONDS


@dataclass(frozen=True)
class Serving:
    """What a process serves: a registry, its record service, and the version it follows."""

    registry: Registry
    service: RecordService
    version: int  # the applied version this process has caught up with (0: none applied)
    applied: AppliedVersion | None  # the newest applied version it has seen


class Runtime:
    """The current configuration of one process, swapped whole when the fleet's moves on."""

    def __init__(self, registry: Registry, engine: sa.Engine, site: Path | None = None,
                 root: Path | None = None, service: RecordService | None = None,
                 poll: float | None = None):
        from engine.config.layers import CONTENT_ROOT
        self.engine = engine
        self.site = Path(site) if site is not None else (
            Path(registry.app.folder) if registry.app and registry.app.folder else None)
        self.root = root or CONTENT_ROOT
        self.identity = leases.new_identity()
        self.poll = poll_seconds() if poll is None else poll
        self._queue: JobSink = UNSENT
        self._lock = threading.Lock()
        self._checked = 0.0
        self._listeners: list[Callable[[Serving], None]] = []
        service = service or RecordService(registry, engine)
        applied = self._applied(service)
        self.serving = Serving(registry, service, applied.version if applied else 0, applied)
        service.queue = self
        if applied is not None and applied.fingerprint != registry.fingerprint:
            log.warning("this configuration differs from version %s, which `crm migrate` "
                        "applied last; run `crm migrate` to apply it", applied.version)

    # ---------------------------------------------------------------- what is served

    @property
    def registry(self) -> Registry:
        return self.serving.registry

    @property
    def service(self) -> RecordService:
        return self.serving.service

    @property
    def version(self) -> int:
        return self.serving.version

    def on_swap(self, listener: Callable[[Serving], None]) -> None:
        """Call `listener` with the new Serving after every swap (the web app rebuilds its
        site; an embedded runner follows by itself)."""
        self._listeners.append(listener)

    # ---------------------------------------------------------------- the queue

    def use_queue(self, queue: JobSink) -> None:
        """Send background work to `queue` from now on (services ask through the runtime,
        so one set after a swap keeps working)."""
        self._queue = queue

    def send(self, job: str, **payload) -> None:
        """JobSink: ask for `job`; what the service asks for goes to the current queue."""
        self._queue.send(job, **payload)

    @property
    def queue(self) -> JobSink:
        return self._queue

    # ---------------------------------------------------------------- following the fleet

    def refresh(self, force: bool = False, loaded: Registry | None = None) -> bool:
        """Catch up with the applied configuration (at most every `poll` seconds unless
        forced); return whether a new configuration is now served. `loaded`: a registry
        this process has just read from its folder (it applied it), used when it matches."""
        if not force and time.monotonic() - self._checked < self.poll:
            return False
        with self._lock:
            if not force and time.monotonic() - self._checked < self.poll:
                return False  # another thread checked while this one waited for the lock
            self._checked = time.monotonic()
            current = self.serving
            applied = self._applied(current.service)
            if applied is None or (current.applied is not None and
                                   applied.version == current.applied.version):
                return False
            if applied.fingerprint == current.registry.fingerprint:
                self.serving = Serving(current.registry, current.service, applied.version,
                                       applied)
                return False
            registry = loaded if loaded is not None and \
                loaded.fingerprint == applied.fingerprint else self._load()
            if registry is None or registry.fingerprint != applied.fingerprint:
                self.serving = Serving(current.registry, current.service, current.version,
                                       applied)
                log.error("configuration version %s was applied, but this process's files "
                          "give another configuration; it keeps serving version %s (see "
                          "/readyz)", applied.version, current.version)
                return False
            service = RecordService(registry, self.engine)
            service.files = current.service.files  # a store set up before serving stays
            service.queue = self
            self.engine.dispose()  # pooled connections may hold statements of the old tables
            self.serving = Serving(registry, service, applied.version, applied)
            log.info("now serving configuration version %s", applied.version)
        for listener in list(self._listeners):
            listener(self.serving)
        return True

    def problems(self) -> list[str]:
        """Why this process is not serving the applied configuration (empty when it is)."""
        serving = self.serving
        applied = serving.applied
        if applied is None:
            return ["no configuration has been applied to this database: run crm migrate"]
        if applied.fingerprint != serving.registry.fingerprint:
            if applied.version == serving.version:
                return [f"this process's configuration differs from version {applied.version}, "
                        "the one applied last: run crm migrate"]
            return [f"configuration version {applied.version} was applied, but this process's "
                    f"site folder or engine differs from it; it serves version "
                    f"{serving.version}"]
        return []

    def _applied(self, service: RecordService) -> AppliedVersion | None:
        with self.engine.connect() as conn:
            return applied_version(conn, service.schema)

    def _load(self) -> Registry | None:
        if self.site is None:
            return None
        import engine
        try:
            return engine.load_registry(site=self.site, root=self.root)
        except engine.ConfigError as exc:
            log.error("the site folder's configuration does not load (%d problems), first: %s",
                      len(exc.problems), exc.problems[0] if exc.problems else "-")
            return None
