"""`crm serve --dev`: serve a site and swap in its configuration whenever its YAML changes.

The dev server is a WSGI application in front of the real one. Each reload reads and checks
every layer, and only a configuration that compiled whole *and* matches the database becomes a
new Flask app (built by `create_app`, with its own registry and services). The reference to the
current `DevState` is replaced in one assignment, and every request reads it once, so a request
is served wholly by the old configuration or wholly by the new one, never a mix.

While the configuration is broken, or the database needs a migration, every request is answered
by the dev pages (web/devpages.py): the problem list, or the migration plan with a button to
apply it. The last good app is kept meanwhile (the scheduler keeps running on it), and nothing a
consultant types into a YAML file can stop the server: every failure of a reload is shown, not
raised.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from flask import Flask

from engine import CONTENT_ROOT, ConfigError, Problem, Registry, build_registry, resolve_layers
from web.devwatch import Watcher

log = logging.getLogger("crm.dev")
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost", "[::1]")


@dataclass(frozen=True)
class DevState:
    """One outcome of a reload; `generation` counts them, so a page can tell it is stale."""

    generation: int
    loaded_at: dt.datetime
    app: Flask | None = None  # serving: the configuration compiled and the database matches
    problems: tuple[Problem, ...] = ()  # the configuration does not compile
    plan: object | None = None  # engine.storage.migrate.Plan the database needs first
    registry: Registry | None = None  # compiled (also while its migration is pending)
    failure: str | None = None  # a reload or migration that failed for another reason
    last_good: Flask | None = None  # the newest app that served, kept while this one cannot
    last_good_at: dt.datetime | None = None

    @property
    def status(self) -> str:
        if self.app is not None:
            return "ok"
        if self.problems:
            return "invalid"
        if self.plan is not None:
            return "migration"
        return "failed"


def is_loopback(host: str) -> bool:
    """True for the addresses only this machine can reach."""
    return host in LOOPBACK_HOSTS or host.startswith("127.")


class DevServer:
    """The WSGI application of `crm serve --dev`; `start()` loads and begins watching."""

    def __init__(self, site: Path, database: str | None = None, root: Path = CONTENT_ROOT,
                 secret: str | None = None, background: Callable | None = None,
                 interval: float = 0.5, settle: float = 0.3,
                 on_reload: Callable[[DevState], None] | None = None):
        from web.devpages import create_pages
        from web.session import secret_key
        self.site, self.database, self.root = Path(site), database, root
        # one key for every app of this process: a session cookie outlives the swaps
        self.secret = secret or secret_key(str(self.site))
        self.engine = None  # made from the first configuration that compiles, then kept
        # background(runtime) -> what runs the jobs of the app served (stopped on a swap)
        self._background_factory, self._background = background, None
        self._on_reload = on_reload
        self._lock = threading.Lock()  # one reload or migration at a time
        self.state = DevState(0, _now(), failure="not loaded yet")
        self.pages = create_pages(self)
        # every layer that can be chosen, not only the current ones: a snapshot taken before
        # the first load needs no knowledge of app.yaml, and a `pack:` edit is seen at once
        self._watcher = Watcher((root / "metadata", root / "industry_packs", self.site),
                                self.reload, interval, settle)

    # ------------------------------------------------------------ serving

    def __call__(self, environ, start_response):
        state = self.state  # read once: this request sees one configuration throughout
        environ["crm.dev.state"] = state
        if state.app is None or environ.get("PATH_INFO", "").startswith("/_dev/"):
            return self.pages(environ, start_response)
        return state.app(environ, start_response)

    def start(self) -> "DevServer":
        self._watcher.start()  # first: a save during the first load is not missed
        self.reload()
        return self

    def stop(self) -> None:
        self._watcher.stop()
        if self._background is not None:
            self._background.stop()
        if self.engine is not None:
            self.engine.dispose()

    # ------------------------------------------------------------ reloading

    def reload(self) -> DevState:
        """Read, check and (when the database matches) serve the configuration as it is now."""
        with self._lock:
            previous = self.state
            number = previous.generation + 1
            kept = _kept(previous)
            try:
                layers, problems = resolve_layers(self.site, self.root)
                registry = build_registry(layers, problems)
                state = self._serve_or_plan(number, registry, kept)
            except ConfigError as exc:
                state = DevState(number, _now(), problems=exc.problems, **kept)
            except Exception as exc:  # noqa: BLE001 - shown on every page; the server lives on
                log.error("reload failed:\n%s", traceback.format_exc())
                state = DevState(number, _now(), failure=f"{type(exc).__name__}: {exc}",
                                 **kept)
            return self._swap(state)

    def apply_migration(self, generation: int) -> DevState:
        """Apply the plan shown for `generation`; refuse when a newer reload replaced it."""
        from engine.storage.migrate import MigrationRefused, migrate
        with self._lock:
            state = self.state
            if state.generation != generation or state.plan is None:
                raise StalePlan(state)
            number = state.generation + 1
            try:
                migrate(self.engine, state.registry)
            except MigrationRefused as exc:  # the data changed since the plan was made
                return self._swap(replace(state, generation=number, loaded_at=_now(),
                                          plan=exc.plan, failure=None))
            except Exception as exc:  # noqa: BLE001 - the page shows why; nothing was applied
                log.error("migration failed:\n%s", traceback.format_exc())
                return self._swap(replace(state, generation=number, loaded_at=_now(),
                                          failure=f"{type(exc).__name__}: {exc}"))
            try:
                return self._swap(self._serve_or_plan(number, state.registry, _kept(state)))
            except Exception as exc:  # noqa: BLE001 - applied, but the app could not be built
                log.error("reload after the migration failed:\n%s", traceback.format_exc())
                return self._swap(DevState(number, _now(), failure=f"{type(exc).__name__}: {exc}",
                                           **_kept(state)))

    def _serve_or_plan(self, number: int, registry: Registry, kept: dict) -> DevState:
        from engine.storage.migrate import plan_migration
        from web import create_app
        if self.engine is None:
            self.engine = self._connect(registry)
        with self.engine.connect() as conn:
            plan = plan_migration(conn, registry)
        if plan.changes:
            return DevState(number, _now(), plan=plan, registry=registry, **kept)
        app = create_app(registry, self.engine)
        app.secret_key = self.secret
        return DevState(number, _now(), app=app, registry=registry)

    def _connect(self, registry: Registry):
        from engine.storage.database import connect, database_url
        return connect(database_url(self.database, self.site,
                                    registry.app.database if registry.app else None))

    def _swap(self, state: DevState) -> DevState:
        previous = self.state
        self.state = state
        if state.app is not None and state.app is not previous.app and \
                self._background_factory is not None:
            # the background work follows the app served; the last good one's stops (its
            # jobs finish or hand their work back first)
            old, self._background = self._background, self._background_factory(
                state.app.extensions["crm_runtime"])
            if old is not None:
                old.stop()
        if self._on_reload is not None:
            self._on_reload(state)
        return state

    def serving_service(self):
        """The record service background work runs on: the app served, else the last good."""
        state = self.state
        app = state.app or state.last_good
        return app.extensions["crm"].service


class StalePlan(Exception):
    """The plan a form was made from is no longer the current one."""

    def __init__(self, state: DevState):
        self.state = state
        super().__init__("the configuration changed since this plan was shown")


def _kept(previous: DevState) -> dict:
    """The last good app to keep while `previous` is replaced by a state that cannot serve."""
    if previous.app is not None:
        return {"last_good": previous.app, "last_good_at": previous.loaded_at}
    return {"last_good": previous.last_good, "last_good_at": previous.last_good_at}


def _now() -> dt.datetime:
    return dt.datetime.now().astimezone()
