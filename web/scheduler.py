"""The server's background thread: due schedule automations and webhook deliveries.

Safe with several server processes: each tick is claimed in the database before it runs, and
webhook messages are marked delivered in the database, so work is never done twice.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("crm.scheduler")


class Scheduler:
    def __init__(self, service, interval: float = 30.0):
        # a RecordService, or a function returning the current one: the admin console swaps
        # the service after it applies a migration, and the thread must follow it
        self._service = service if callable(service) else (lambda: service)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="crm-scheduler", daemon=True)

    def start(self) -> "Scheduler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def run_once(self) -> list[str]:
        service = self._service()
        return service.automations.run_due() + service.webhooks.deliver_due()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                for line in self.run_once():
                    log.info(line)
            except Exception:  # noqa: BLE001 - the loop must survive a bad tick and retry
                log.exception("scheduled work failed; retrying at the next interval")
            self._stop.wait(self.interval)
