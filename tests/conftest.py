"""Shared fixtures: small layered configurations and the databases tests run on."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from pgdb import temporary_database

import engine

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_ROOT = FIXTURES / "root"  # a private metadata/ + industry_packs/ for checker tests
POSTGRES_URL = os.environ.get("CRM_TEST_POSTGRES_URL")


def write_site(folder: Path, files: dict[str, str], app: str | None = None) -> Path:
    """Write a site folder: app.yaml (unless given in `files`) and the given files."""
    folder.mkdir(parents=True, exist_ok=True)
    if "app.yaml" not in files:
        (folder / "app.yaml").write_text(app or "app: test_site\nlabel: Test\n", encoding="utf-8")
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return folder


def problems_of(site: Path, root: Path = FIXTURE_ROOT) -> list[tuple[str, int, int, str]]:
    """Return the problems of a site as (file name relative to it, line, column, code)."""
    with pytest.raises(engine.ConfigError) as caught:
        engine.load_registry(site=site, root=root)
    result = []
    for p in caught.value.problems:
        path = Path(p.path)
        try:
            name = str(path.resolve().relative_to(site.resolve()))
        except ValueError:
            name = p.path
        result.append((name, p.line, p.column, p.code))
    return result


@pytest.fixture
def site(tmp_path):
    """Return a function that writes a site on top of the fixture root and loads it."""
    def make(files: dict[str, str], app: str | None = None) -> Path:
        return write_site(tmp_path / "site", files, app)
    return make


@pytest.fixture
def load():
    def run(site_dir: Path, root: Path = FIXTURE_ROOT):
        return engine.load_registry(site=site_dir, root=root)
    return run


@pytest.fixture(scope="session")
def postgres_server_url():
    """The PostgreSQL server to test against; CI sets it, and then it must be reachable."""
    if not POSTGRES_URL:
        pytest.skip("CRM_TEST_POSTGRES_URL is not set (CI sets it)")
    import sqlalchemy as sa

    engine_ = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine_.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:  # a configured server that cannot be reached fails, never skips
        pytest.fail(f"CRM_TEST_POSTGRES_URL is set but PostgreSQL cannot be reached: {exc}")
    finally:
        engine_.dispose()
    return POSTGRES_URL


@pytest.fixture
def postgres_database(postgres_server_url):
    """Create a fresh database for one test and drop it afterwards; yield its URL."""
    with temporary_database(postgres_server_url) as url:
        yield url


BARE_ROOT = FIXTURES / "bare_root"
RECORDS_SITE = FIXTURES / "sites" / "records"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A fresh, empty database: SQLite always, PostgreSQL when CRM_TEST_POSTGRES_URL is set."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
    else:
        yield request.getfixturevalue("postgres_database")


class World:
    """A migrated test site with its record service and a few users."""

    def __init__(self, url: str, site: Path = RECORDS_SITE, root: Path = BARE_ROOT):
        from engine.records.service import RecordService
        from engine.records.users import Users
        from engine.storage.database import connect
        from engine.storage.migrate import migrate

        self.registry = engine.load_registry(site=site, root=root)
        self.engine = connect(url)
        migrate(self.engine, self.registry)
        self.service = RecordService(self.registry, self.engine)
        self.users = Users(self.registry, self.engine, self.service.schema)

    def user(self, name: str, *roles: str, locale: str = "en"):
        user_id = self.users.by_username(name) or self.users.create(name, "pw", list(roles))
        return self.users.caller(user_id, locale=locale)


@pytest.fixture
def world(database_url):
    w = World(database_url)
    yield w
    w.engine.dispose()
