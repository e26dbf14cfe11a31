"""Notice edits of a site's YAML by polling file times, for `crm serve --dev`.

Polling needs no dependency and works the same on every file system (network shares and
container volumes included, where change notifications are unreliable). A change is acted on
only once the files have been quiet for `settle` seconds, so an editor that writes a file in
several steps (or a `git checkout` touching many) causes one reload, not a reload of a half-saved
file.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

log = logging.getLogger("crm.dev")
YAML_SUFFIXES = (".yaml", ".yml")
WATCHED_SUFFIXES = YAML_SUFFIXES + (".html", ".htm")  # and documents/ templates (crm validate)

Snapshot = frozenset  # of (path, mtime_ns, size)


def snapshot(folders: Iterable[Path], depth: int = 4) -> Snapshot:
    """Return the YAML files under `folders` with their modification time and size.

    Hidden files and folders (`.crm/`, `.git/`, editor swap files) are skipped: they are not
    configuration, and an editor touches them on every keystroke. `depth` folder levels are
    enough for `industry_packs/<pack>/documents/templates/x.html`, the deepest file a layer
    reads; deeper files are never read as configuration.
    """
    found = set()
    for folder in folders:
        base = str(folder).rstrip(os.sep).count(os.sep)
        for parent, dirs, files in os.walk(folder):
            deeper = parent.rstrip(os.sep).count(os.sep) - base < depth - 1
            dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if deeper else []
            for name in files:
                if name.startswith(".") or not name.endswith(WATCHED_SUFFIXES):
                    continue
                path = os.path.join(parent, name)
                try:
                    stat = os.stat(path)
                except OSError:  # deleted between listing and stat: the next poll sees it
                    continue
                found.add((path, stat.st_mtime_ns, stat.st_size))
    return frozenset(found)


class Watcher:
    """Call `on_change` after the YAML under `folders` changed and then stayed unchanged."""

    def __init__(self, folders: Iterable[Path], on_change: Callable[[], None],
                 interval: float = 0.5, settle: float = 0.3):
        self.folders, self.on_change = tuple(folders), on_change
        self.interval, self.settle = interval, settle
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="crm-dev-watch", daemon=True)
        self._seen: Snapshot = frozenset()

    def start(self) -> "Watcher":
        """Take the first snapshot now, so that any save after this call is noticed."""
        self._seen = snapshot(self.folders)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        changed_at: float | None = None
        while not self._stop.wait(self.interval):
            try:
                now = snapshot(self.folders)
                if now != self._seen:
                    self._seen, changed_at = now, time.monotonic()
                    continue
                if changed_at is not None and time.monotonic() - changed_at >= self.settle:
                    changed_at = None
                    # `_seen` was taken before the reload reads the files: a save made while
                    # it runs differs from it and causes another reload at the next poll
                    self.on_change()
            except Exception:  # noqa: BLE001 - the watcher must outlive any one bad reload
                log.exception("watching the configuration failed; retrying")
