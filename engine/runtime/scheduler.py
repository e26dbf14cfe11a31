"""The scheduler: asks the queue for work that is due, every few seconds.

It writes nothing but the hand-out marks: each round it opens the current tick of every
schedule automation and asks for the unfinished ticks nobody holds (a new tick, or one whose
worker died: the job goes on from the tick's checkpoint), asks for a webhook sweep when a
message has waited too long with nobody sending it, for imports and exports that are queued
or interrupted, for a mail fetch when one is due, and for notification mails left unsent.

Several schedulers may run (one per machine, say): a lease (`crm_lease` "scheduler") makes
one of them the active one, the others take over within LEADER_SECONDS when it stops. Even
two active at once would only ask twice: every job claims its work in the database.
"""

from __future__ import annotations

import logging
import threading
import time

from engine.runtime.context import Runtime
from engine.storage.leases import Singleton, lease_seconds, new_identity

log = logging.getLogger("crm.scheduler")
DEFAULT_INTERVAL = 5.0


def grace_seconds() -> float:
    """Work waiting this long with nobody holding it was not asked for (or its worker
    died): at most 10 s, less with short leases."""
    return min(10.0, lease_seconds())


class Scheduler:
    def __init__(self, runtime: Runtime, interval: float = DEFAULT_INTERVAL):
        self.runtime = runtime
        self.interval = interval
        self.identity = f"{runtime.identity}/scheduler"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def leader_seconds(self) -> float:
        return max(3 * self.interval, 15.0)

    def run_once(self) -> list[str]:
        """One round; return what was asked for (nothing while another scheduler leads)."""
        runtime = self.runtime
        runtime.refresh()
        service = runtime.service
        leases = Singleton(service.engine, service.schema.engine["lease"])
        if not leases.take("scheduler", self.identity, self.leader_seconds):
            return []
        queue = runtime.queue
        grace = grace_seconds()
        asked = []
        for name, tick in service.automations.due_ticks(again_after=grace):
            queue.send("automations.tick", automation=name, tick=tick.isoformat())
            asked.append(f"automations.tick {name} {tick.isoformat()}")
        if service.webhooks.overdue(grace):
            queue.send("webhooks.sweep")
            asked.append("webhooks.sweep")
        from engine.records.exportjobs import ExportJobs
        from engine.records.importjobs import ImportJobs
        for job_id in ImportJobs(service).waiting(again_after=grace):
            queue.send("imports.run", job_id=job_id)
            asked.append(f"imports.run {job_id}")
        for export_id in ExportJobs(service).waiting(again_after=grace):
            queue.send("exports.run", export_id=export_id)
            asked.append(f"exports.run {export_id}")
        from engine.mail.notify import NotificationMail
        mailer = NotificationMail(service)
        if mailer.enabled and mailer.overdue(grace):
            queue.send("notifications.mail")
            asked.append("notifications.mail")
        mail = service.registry.mail
        if mail is not None and mail.mailboxes and mail.fetch_every_minutes:
            # the cadence is a lease nobody renews: taken once per period, by one scheduler
            if leases.take("mail.fetch:cadence", new_identity(), mail.fetch_every_minutes * 60):
                queue.send("mail.fetch")
                asked.append("mail.fetch")
        return asked

    def start(self) -> "Scheduler":
        """Run rounds in a background thread until `stop`."""
        self._thread = threading.Thread(target=self.loop, name="crm-scheduler", daemon=True)
        self._thread.start()
        return self

    def loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                for line in self.run_once():
                    log.debug("asked for %s", line)
            except Exception:  # noqa: BLE001 - a round that fails is retried at the next
                log.exception("a scheduler round failed; trying again in %.0f s", self.interval)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        try:
            service = self.runtime.service
            Singleton(service.engine, service.schema.engine["lease"]).give_back(
                "scheduler", self.identity)
        except Exception:  # noqa: BLE001 - the lease then simply runs out
            log.warning("could not hand the scheduler lease back; another takes over when it "
                        "runs out")
