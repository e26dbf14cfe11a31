"""A seeded site of the real content (metadata/ and, optionally, an industry pack).

Used by the tests of the standard model and of the packs: one database per test module and
database kind, migrated and seeded once (seeding takes seconds, not a test's worth of time),
with one user per role whose username is the role, as `crm demo` makes them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

import engine
from pgdb import create_database

REPO = Path(__file__).resolve().parents[1]
UTC = dt.timezone.utc


class PackWorld:
    def __init__(self, url: str, folder: Path, pack: str | None):
        from engine.records.seedfiles import load_seed_files
        from engine.records.seeding import load_seeds
        from engine.records.service import RecordService
        from engine.records.users import Users
        from engine.storage.database import connect
        from engine.storage.migrate import migrate

        folder.mkdir(parents=True, exist_ok=True)
        (folder / "app.yaml").write_text("app: test_site\nlabel: Test\n" +
                                         (f"pack: {pack}\n" if pack else ""), encoding="utf-8")
        self.registry = engine.load_registry(site=folder, root=REPO)
        self.engine = connect(url)
        migrate(self.engine, self.registry)
        self.service = RecordService(self.registry, self.engine)
        self.users = Users(self.registry, self.engine, self.service.schema)
        for role in self.registry.roles:
            self.users.create(role, "pw", [role])
        self.seed_lines = list(load_seeds(self.service, self.users))
        # what `crm demo` loads besides the records: exchange rates, a sample mailbox
        self.seed_file_lines = list(load_seed_files(self.service))
        self._tick = 0

    def as_(self, role: str):
        """The caller of the demo user named after `role`."""
        return self.users.caller(self.users.by_username(role))

    def uid(self, role: str) -> int:
        return self.users.by_username(role)

    def run_schedules(self) -> list[str]:
        """Run the schedule automations once, at a tick no earlier run has claimed."""
        self._tick += 1
        now = dt.datetime.now(UTC) + dt.timedelta(days=400 + self._tick)
        return self.service.automations.run_due(now)

    def report(self, name: str, role: str = "admin") -> dict:
        from engine.records.reports import run_report
        result = run_report(self.service, self.as_(role), name)
        names = [c["name"] for c in result["columns"]]
        return {"columns": names, "rows": [dict(zip(names, row)) for row in result["rows"]]}

    def notified(self, role: str) -> list[str]:
        data, _ = self.service.notifications(self.as_(role), limit=500)
        return [n["message"] for n in data]

    def count(self, entity: str, role: str = "admin", **filters) -> int:
        from engine.records.listing import ListQuery
        query = ListQuery(filters=[(k, k, "in", str(v)) for k, v in filters.items()],
                          limit=1, exact_count=True)
        return self.service.list(self.as_(role), entity, query).total


def seed_counts(*folders: Path) -> dict[str, int]:
    """Records per entity in the seed files of the given layers."""
    counts: dict[str, int] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.yaml")):
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            counts[doc["entity"]] = counts.get(doc["entity"], 0) + len(doc["records"])
    return counts


def make_world(request, tmp_path_factory, pack: str | None):
    """Build the world for the module's database kind (request.param)."""
    folder = tmp_path_factory.mktemp("site")
    if request.param == "sqlite":
        world = PackWorld(f"sqlite:///{folder / 'test.db'}", folder, pack)
        return world, None
    server = request.getfixturevalue("postgres_server_url")
    url, drop = create_database(server, prefix="crm_pack")
    try:
        return PackWorld(url, folder, pack), drop
    except Exception:
        drop()
        raise


def today() -> dt.date:
    return dt.datetime.now(UTC).date()


def raises(kind):
    from engine import errors
    return pytest.raises(getattr(errors, kind))


def world_fixture(pack: str | None):
    """A module-scoped fixture `w`: the seeded world of `pack`, on SQLite and PostgreSQL."""
    @pytest.fixture(scope="module", params=["sqlite", "postgresql"])
    def w(request, tmp_path_factory):
        world, drop = make_world(request, tmp_path_factory, pack)
        world.kind = request.param
        yield world
        world.engine.dispose()
        if drop:
            drop()
    return w


# short ways to act as a demo user in the per-requirement tests

def create(w, who, entity, **values):  # `who`: a record may have a field named `role`
    return w.service.create(w.as_(who), entity, values)


def fire(w, role, entity, record, name, **values):
    return w.service.transition(w.as_(role), entity, record["id"], name, values or None)


def get(w, entity, record, role="admin"):
    return w.service.get(w.as_(role), entity, record["id"])


def update(w, role, entity, record, **values):
    current = w.service.get(w.as_("admin"), entity, record["id"])
    return w.service.update(w.as_(role), entity, record["id"], values, current["version"])


# checks every pack makes of its sample data and of the pages `crm demo` serves

def assert_reports_and_dashboards_run(w) -> None:
    """Every report of the pack has rows on the sample data; no dashboard widget is refused."""
    from engine.records.dashboards import dashboard_data
    for name in w.registry.reports:
        assert w.report(name)["rows"], f"report {name} is empty on the sample data"
    for name in w.registry.dashboards:
        data = dashboard_data(w.service, w.as_("admin"), name)
        assert all(widget["kind"] != "unavailable" for widget in data["widgets"]), name


def signed_in_client(w, monkeypatch, username: str = "admin", password: str = "pw"):
    """A test client of the web app over the world's database, signed in as a demo user."""
    import re

    from web import create_app
    monkeypatch.setenv("CRM_SECRET_KEY", "test-secret-key")
    client = create_app(w.registry, w.engine).test_client()
    login = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', login)
    data = {"username": username, "password": password}
    if token:
        data["csrf_token"] = token.group(1)
    assert client.post("/login", data=data).status_code in (302, 303)
    return client


def assert_demo_pages_render(w, monkeypatch) -> None:
    """Every dashboard, every list page and the first record of each list render for admin."""
    import re

    client = signed_in_client(w, monkeypatch)
    for name in w.registry.dashboards:
        assert client.get(f"/dashboards/{name}").status_code == 200, name
    for name, entity in w.registry.entities.items():
        if entity.parent:
            continue
        page = client.get(f"/{name}")
        assert page.status_code == 200, name
        first = re.search(rf'href="/{name}/(\d+)"', page.get_data(as_text=True))
        if first:
            assert client.get(f"/{name}/{first.group(1)}").status_code == 200, name
