"""Where the record service asks for background work once a change has committed.

The service never runs slow work (a webhook's HTTP call, a mail) inside a user's request: it
writes the work into the database in the change's own transaction, and after the commit tells
a job sink. The runtime (engine/runtime) plugs the site's job queue in here; without one,
nothing is lost: the scheduler's sweep finds every piece of due work in the database.
"""

from __future__ import annotations

from typing import Protocol


class JobSink(Protocol):
    def send(self, job: str, **payload) -> None:
        """Ask for `job` to run with `payload` (JSON data), soon and in the background."""


class Unsent:
    """No queue: work waits in the database for the next sweep (or `crm run-automations`)."""

    def send(self, job: str, **payload) -> None:
        return None


UNSENT = Unsent()
