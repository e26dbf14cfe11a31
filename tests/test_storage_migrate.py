"""Migrations (DSL §7): additive and widening changes applied, data-losing ones refused."""

import datetime as dt
import textwrap

import pytest
import sqlalchemy as sa

import engine
from conftest import BARE_ROOT
from engine.storage.database import connect
from engine.storage.migrate import MigrationRefused, migrate, plan_migration

STAMP = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


class Site:
    """A site whose one entity file a test rewrites between migrations."""

    def __init__(self, folder, url):
        self.folder = folder
        (folder / "entities").mkdir(parents=True)
        (folder / "app.yaml").write_text("app: m\n")
        self.db = connect(url)

    def configure(self, fields: str, extra: str = "") -> engine.Registry:
        (self.folder / "entities" / "item.yaml").write_text(
            "entity: item\nfields:\n" + textwrap.indent(textwrap.dedent(fields).strip(), "  ")
            + "\n" + extra)
        return engine.load_registry(site=self.folder, root=BARE_ROOT)

    def plan(self, registry, **kw):
        with self.db.connect() as conn:
            return plan_migration(conn, registry, **kw)

    def insert(self, *rows):
        with self.db.begin() as conn:
            table = sa.table("e_item", *[sa.column(c) for c in
                                         ["version", "created_at", "updated_at",
                                          *rows[0].keys()]])
            conn.execute(table.insert(), [{"version": 1, "created_at": STAMP,
                                           "updated_at": STAMP, **r} for r in rows])

    def values(self, column):
        with self.db.connect() as conn:
            return [r[0] for r in conn.execute(sa.text(f'SELECT "{column}" FROM e_item '
                                                       "ORDER BY id"))]


@pytest.fixture
def site(tmp_path, database_url):
    s = Site(tmp_path / "site", database_url)
    yield s
    s.db.dispose()


def test_fresh_database_then_nothing_to_do(site):
    registry = site.configure("name: {type: string}")
    plan = site.plan(registry)
    assert "create table e_item for entity item" in plan.lines()
    migrate(site.db, registry)
    assert site.plan(registry).lines() == []


def test_new_field_and_index_are_added(site):
    migrate(site.db, site.configure("name: {type: string}"))
    site.insert({"name": "a"})
    registry = site.configure("name: {type: string}\ncode: {type: string, index: true}")
    assert site.plan(registry).lines() == ["add column e_item.code (string)",
                                           "create index ix_e_item_code"]
    migrate(site.db, registry)
    assert site.values("name") == ["a"] and site.values("code") == [None]


def test_a_new_unique_field_on_a_table_with_rows(site):
    migrate(site.db, site.configure("name: {type: string}"))
    site.insert({"name": "a"}, {"name": "b"})
    registry = site.configure("name: {type: string}\nref: {type: string, unique: true}")
    assert site.plan(registry).lines() == ["add column e_item.ref (string)",
                                           "create index uq_e_item_ref"]
    migrate(site.db, registry)
    assert site.values("ref") == [None, None]


def test_rename_keeps_data_and_a_stale_renamed_from_does_nothing(site):
    migrate(site.db, site.configure("name: {type: string}"))
    site.insert({"name": "kept"})
    renamed = site.configure("title: {type: string, renamed_from: name}")
    assert site.plan(renamed).lines() == ["rename column e_item.name to title (data kept)",
                                          "build search index for item (title)"]
    migrate(site.db, renamed)
    assert site.values("title") == ["kept"]
    assert site.plan(renamed).lines() == []


def test_removed_field_keeps_its_column_and_comes_back(site):
    migrate(site.db, site.configure("name: {type: string}\nfax: {type: string}"))
    site.insert({"name": "a", "fax": "123"})
    without = site.configure("name: {type: string}")
    assert site.plan(without).lines() == [
        "keep column e_item.fax: field item.fax is no longer used; its data is kept"]
    migrate(site.db, without)
    back = site.configure("name: {type: string}\nfax: {type: string}")
    assert site.plan(back).lines() == []
    migrate(site.db, back)
    assert site.values("fax") == ["123"]


def test_widening_changes_are_applied(site):
    migrate(site.db, site.configure("n: {type: integer}\ns: {type: string, max_length: 10}\n"
                                    "e: {type: enum, options: [a, b]}"))
    site.insert({"n": 3, "s": "short", "e": "a"})
    wider = site.configure("n: {type: decimal}\ns: {type: string, max_length: 200}\n"
                           "e: {type: enum, options: [a, b, c]}")
    lines = site.plan(wider).lines()
    assert lines == ["alter e_item.n from integer to decimal (widening)",
                     "alter e_item.s from string to string (widening)"]
    migrate(site.db, wider)
    assert [float(v) for v in site.values("n")] == [3.0] and site.values("s") == ["short"]


REFUSALS = [
    ("s: {type: string, max_length: 20}", "s: {type: string, max_length: 5}",
     {"s": "longer than five"}, "item.s: shorten e_item.s to 5 characters"),
    ("e: {type: enum, options: [a, b]}", "e: {type: enum, options: [a]}",
     {"e": "b"}, "item.e: remove options b of item.e: rows still use them"),
    ("r: {type: string}", "r: {type: string, required: true}",
     {"r": None}, "item.r: make item.r required: rows have it empty"),
    ("u: {type: string}", "u: {type: string, unique: true}",
     {"u": "same"}, "item.u: make item.u unique: rows share a value"),
    ("d: {type: decimal}", "d: {type: integer}",
     {"d": 1.5}, "item.d: alter e_item.d from decimal to integer"),
    ("m: {type: integer}", "m: {type: integer, min: 10}",
     {"m": 3}, "item.m: set min 10 on item.m: rows are outside it"),
    ("x: {type: string}", "x: {type: string}\nnew_req: {type: string, required: true}",
     {"x": "row"}, "item.new_req: new required field on a table with rows that would be empty"),
]


@pytest.mark.parametrize("before,after,row,start", REFUSALS, ids=[r[3].split(":")[1].strip()
                                                                 for r in REFUSALS])
def test_data_losing_changes_are_refused_with_counts(site, before, after, row, start):
    migrate(site.db, site.configure(before))
    site.insert(row, row)
    registry = site.configure(after)
    plan = site.plan(registry)
    refused = [l for l in plan.lines() if l.startswith("REFUSED: ")]
    assert len(refused) == 1 and refused[0].startswith("REFUSED: " + start), plan.lines()
    assert refused[0].endswith("; 2 rows affected")
    with pytest.raises(MigrationRefused):
        migrate(site.db, registry)
    assert site.plan(registry).lines() == plan.lines()  # nothing changed
    migrate(site.db, registry, allow_data_loss=True)
    assert not site.plan(registry).refused


def test_narrowing_that_no_row_violates_is_applied(site):
    migrate(site.db, site.configure("s: {type: string, max_length: 20}\n"
                                    "e: {type: enum, options: [a, b]}"))
    site.insert({"s": "ok", "e": "a"})
    registry = site.configure("s: {type: string, max_length: 5, required: true}\n"
                              "e: {type: enum, options: [a]}")
    plan = site.plan(registry)
    assert plan.refused == []
    assert "shorten e_item.s to 5 characters (0 rows affected)" in plan.lines()
    migrate(site.db, registry)
    assert site.values("s") == ["ok"]


def test_required_field_with_a_default_is_filled(site):
    migrate(site.db, site.configure("x: {type: string}"))
    site.insert({"x": "a"})
    registry = site.configure("x: {type: string}\nlevel: {type: integer, required: true, "
                              "default: 3}")
    migrate(site.db, registry)
    assert site.values("level") == [3]


def test_a_failing_migration_changes_nothing(site, monkeypatch):
    migrate(site.db, site.configure("x: {type: string}"))
    registry = site.configure("x: {type: string}\ny: {type: string}\nz: {type: integer}")
    import engine.storage.migrate as m
    original = m._field_steps

    def failing(*args, **kwargs):
        steps = original(*args, **kwargs)
        if args[2].name == "z":
            for step in steps:
                step.apply = lambda ops, conn: (_ for _ in ()).throw(RuntimeError("disk full"))
        return steps
    monkeypatch.setattr(m, "_field_steps", failing)
    with pytest.raises(RuntimeError):
        migrate(site.db, registry)
    monkeypatch.setattr(m, "_field_steps", original)
    with site.db.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("e_item")}
    assert "y" not in columns and "z" not in columns
