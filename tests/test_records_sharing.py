"""Sharing rules (roles beyond own and all): a rep reads the hospitals and visits of the
product lines they cover, on every read path, and writes only where a rule allows."""

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.errors import Forbidden, NotFound
from engine.records.bulk import create_many
from engine.records.listing import parse_query
from engine.records.reports import run_report
from engine.records.transfer import export_rows
from engine.storage.database import write_transaction
from engine.storage.migrate import migrate, plan_migration
from engine.storage.sharing import rebuild_all
from tests.conftest import FIXTURES, World, problems_of

SHARING_SITE = FIXTURES / "sites" / "sharing"


@pytest.fixture
def world(database_url):
    w = World(database_url, site=SHARING_SITE)
    yield w
    w.engine.dispose()


@pytest.fixture
def territory(world):
    """Two hospitals; rep A covers cardio at both, rep B covers onco at the first only."""
    boss = world.user("boss", "manager")
    rep_a, rep_b = world.user("rep_a", "med_rep"), world.user("rep_b", "med_rep")
    first = world.service.create(boss, "hospital", {"name": "First People's", "region": "east"})
    second = world.service.create(boss, "hospital", {"name": "Second Union", "region": "west"})
    for rep, hospital, line in ((rep_a, first, "cardio"), (rep_a, second, "cardio"),
                                (rep_b, first, "onco")):
        world.service.create(boss, "coverage", {"rep": rep.user_id, "hospital": hospital["id"],
                                                "line": line})
    visits = {}
    for key, rep, hospital, line, amount in (
            ("a_first_cardio", rep_a, first, "cardio", "100"),
            ("a_second_cardio", rep_a, second, "cardio", "10"),
            ("b_first_onco", rep_b, first, "onco", "7")):
        visits[key] = world.service.create(rep, "visit", {
            "hospital": hospital["id"], "line": line, "notes": f"notes {key}", "amount": amount})
    # a visit of the boss's at the first hospital for the onco line
    visits["boss_first_onco"] = world.service.create(boss, "visit", {
        "hospital": first["id"], "line": "onco", "notes": "notes boss onco", "amount": "1"})
    return boss, rep_a, rep_b, first, second, visits


def ids(page):
    return sorted(r["id"] for r in page.data)


def test_a_rep_of_one_line_cannot_read_the_other_lines_visits_at_the_same_hospital(
        world, territory):
    boss, rep_a, rep_b, first, second, visits = territory
    service = world.service
    assert ids(service.list(rep_a, "hospital")) == [first["id"], second["id"]]
    assert ids(service.list(rep_b, "hospital")) == [first["id"]]
    assert ids(service.list(rep_a, "visit")) == sorted(
        [visits["a_first_cardio"]["id"], visits["a_second_cardio"]["id"]])
    assert ids(service.list(rep_b, "visit")) == sorted(
        [visits["b_first_onco"]["id"], visits["boss_first_onco"]["id"]])
    with pytest.raises(NotFound):
        service.get(rep_a, "visit", visits["b_first_onco"]["id"])
    with pytest.raises(NotFound):
        service.get(rep_b, "hospital", second["id"])
    with pytest.raises(NotFound):
        service.history(rep_a, "visit", visits["boss_first_onco"]["id"])
    assert service.get(rep_b, "visit", visits["boss_first_onco"]["id"])["notes"] == \
        "notes boss onco"


def test_search_reports_exports_and_reference_checks_follow_the_rule(world, territory):
    boss, rep_a, rep_b, first, second, visits = territory
    service = world.service
    assert ids(service.list(rep_a, "visit", parse_query({"q": "notes"}))) == sorted(
        [visits["a_first_cardio"]["id"], visits["a_second_cardio"]["id"]])
    assert ids(service.list(rep_b, "hospital", parse_query({"q": "Union"}))) == []
    assert run_report(service, rep_b, "visits_by_line")["rows"] == [["onco", 2, 8.0]]
    assert run_report(service, boss, "visits_by_line")["rows"] == [["cardio", 2, 110.0],
                                                                   ["onco", 2, 8.0]]
    exported = list(export_rows(service, rep_b, "visit"))
    assert len(exported) == 3  # the header and two visits
    # a reference to a hospital the rep may not read is refused, like one that does not exist
    with write_transaction(world.engine) as conn:
        outcomes = create_many(service, rep_b, "visit", [
            {"hospital": second["id"], "line": "onco"}, {"hospital": first["id"],
                                                         "line": "onco"}], conn)
    assert outcomes[0].error.fields == {"hospital": ["refers to a record that does not exist"]}
    assert outcomes[1].error is None


def test_writes_follow_their_own_rules(world, territory):
    boss, rep_a, rep_b, first, second, visits = territory
    service = world.service
    boss_visit = visits["boss_first_onco"]
    # rep B reads the boss's onco visit (the rule) but updates only own records
    with pytest.raises(Forbidden):
        service.update(rep_b, "visit", boss_visit["id"], {"notes": "x"}, 1)
    # ... and deletes what the delete rule covers: visits of a covered hospital and line
    service.delete(rep_b, "visit", boss_visit["id"], 1)
    with pytest.raises(NotFound):
        service.get(boss, "visit", boss_visit["id"])
    # rep A may not delete a visit outside the rule (not even see it)
    with pytest.raises(NotFound):
        service.delete(rep_a, "visit", visits["b_first_onco"]["id"], 1)
    # a coverage that ends takes the records with it, at once
    coverage = [c for c in service.list(boss, "coverage").data
                if c["rep"] == rep_a.user_id and c["hospital"] == second["id"]][0]
    service.delete(boss, "coverage", coverage["id"], coverage["version"])
    assert ids(service.list(rep_a, "hospital")) == [first["id"]]
    # own: true keeps the rep's own visit readable after the coverage ended
    assert visits["a_second_cardio"]["id"] in ids(service.list(rep_a, "visit"))


def test_a_where_rule_sees_the_user(world):
    boss = world.user("boss", "manager")
    rep = world.user("rep_a", "med_rep")
    east = world.service.create(boss, "bulletin", {"title": "East news", "region": "east"})
    world.service.create(boss, "bulletin", {"title": "West news", "region": "west"})
    mine = world.service.create(boss, "bulletin", {"title": "For A", "region": "west",
                                                   "audience": "rep_a"})
    assert ids(world.service.list(rep, "bulletin")) == sorted([east["id"], mine["id"]])


def test_sharing_rule_mistakes(site, load):
    path = site({
        "entities/a.yaml": """
            entity: a
            fields:
              name: {type: string}
              b: {type: reference, to: b}
            """,
        "entities/b.yaml": """
            entity: b
            fields:
              who: {type: reference, to: user}
              a: {type: reference, to: a}
              title: {type: string}
              count: {type: integer}
            """,
        "roles.yaml": """
            roles:
              r:
                entities:
                  a:
                    read: {through: b, user: title, match: {a: id, count: name, nope: name}}
                    create: {where: "name == 'x'"}
                    update: {where: "nam == 'x'"}
                    delete: {through: c, user: who, match: {a: id}}
                  b:
                    read: {through: a, match: {b: id}}
                    update: {own: true}
            """,
    })
    assert problems_of(path) == [
        ("roles.yaml", 5, 34, "not-a-user-reference"),
        ("roles.yaml", 5, 63, "type-mismatch"),
        ("roles.yaml", 5, 69, "unknown-field"),
        ("roles.yaml", 6, 9, "rule-not-allowed"),
        ("roles.yaml", 7, 26, "expr-unknown-name"),
        ("roles.yaml", 8, 27, "unknown-entity"),
        ("roles.yaml", 10, 9, "incomplete-rule"),
        ("roles.yaml", 11, 9, "empty-rule"),
    ]


# --------------------------------------------------------------- share rows (crm_share)

def share_rows(world) -> set[tuple[int, int, int]]:
    table = world.service.shares.table
    with world.engine.connect() as conn:
        return {tuple(r) for r in conn.execute(sa.select(table.c.rule, table.c.user_id,
                                                         table.c.record_id))}


def assert_rows_are_what_a_rebuild_makes(world) -> None:
    """The rows the writes maintained are exactly those a full recalculation produces."""
    maintained = share_rows(world)
    rebuild_all(world.engine, world.registry, world.service.schema)
    assert maintained == share_rows(world)


def test_share_rows_follow_every_write_that_can_change_them(world, territory):
    boss, rep_a, rep_b, first, second, visits = territory
    service = world.service
    assert_rows_are_what_a_rebuild_makes(world)
    moved = visits["boss_first_onco"]
    # the record's match field changes: it leaves rep B's rule and enters rep A's
    moved = service.update(boss, "visit", moved["id"], {"line": "cardio"}, moved["version"])
    assert moved["id"] not in ids(service.list(rep_b, "visit"))
    assert moved["id"] in ids(service.list(rep_a, "visit"))
    assert_rows_are_what_a_rebuild_makes(world)
    # an assignment changes its user: the records go from one rep to the other
    coverage = [c for c in service.list(boss, "coverage").data
                if c["rep"] == rep_a.user_id and c["hospital"] == first["id"]][0]
    service.update(boss, "coverage", coverage["id"], {"rep": rep_b.user_id},
                   coverage["version"])
    assert moved["id"] in ids(service.list(rep_b, "visit"))
    assert moved["id"] not in ids(service.list(rep_a, "visit"))
    assert ids(service.list(rep_a, "hospital")) == [second["id"]]
    assert ids(service.list(rep_b, "hospital")) == [first["id"]]
    assert_rows_are_what_a_rebuild_makes(world)
    # the owner changes: `own: true` follows the new owner
    mine = visits["a_first_cardio"]
    assert mine["id"] in ids(service.list(rep_a, "visit"))
    service.update(boss, "visit", mine["id"], {"owner": boss.user_id}, mine["version"])
    assert mine["id"] not in ids(service.list(rep_a, "visit"))
    assert_rows_are_what_a_rebuild_makes(world)
    # records created together (import) are shared at once, and a deleted one is gone
    with write_transaction(world.engine) as conn:
        outcomes = create_many(service, boss, "visit", [
            {"hospital": second["id"], "line": "cardio"},
            {"hospital": first["id"], "line": "onco"}], conn)
    new_cardio, new_onco = (o.record_id for o in outcomes)
    assert new_cardio in ids(service.list(rep_a, "visit"))
    assert new_onco in ids(service.list(rep_b, "visit"))
    service.delete(boss, "visit", new_onco, 1)
    assert new_onco not in ids(service.list(rep_b, "visit"))
    assert_rows_are_what_a_rebuild_makes(world)
    # assignments created together (import) share too
    with write_transaction(world.engine) as conn:
        create_many(service, boss, "coverage", [
            {"rep": rep_a.user_id, "hospital": first["id"], "line": "onco"}], conn)
    assert new_onco not in ids(service.list(rep_a, "visit"))  # deleted stays deleted
    assert moved["id"] not in ids(service.list(rep_a, "visit"))  # cardio: rep B's now
    assert visits["b_first_onco"]["id"] in ids(service.list(rep_a, "visit"))
    assert_rows_are_what_a_rebuild_makes(world)


def test_a_page_under_a_rule_reads_share_rows_in_order_with_filters_sorts_and_cursors(
        world, territory):
    boss, rep_a, rep_b, first, second, visits = territory
    service = world.service
    for i in range(12):
        service.create(boss, "visit", {"hospital": first["id"], "line": "onco",
                                       "amount": str(i), "notes": f"extra {i}"})
    expected = ids(service.list(boss, "visit", parse_query({"line": "onco", "limit": "100"})))
    assert len(expected) == 14
    assert service.share_walk(rep_b, service.entity("visit")) is not None
    seen, cursor = [], None
    while True:
        params = {"limit": "5", **({"cursor": cursor} if cursor else {})}
        page = service.list(rep_b, "visit", parse_query(params))
        assert page.total == 14 and not page.total_capped
        seen += [r["id"] for r in page.data]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected  # in id order, each once
    page = service.list(rep_b, "visit", parse_query({"amount__gte": "10", "count": "exact"}))
    assert (ids(page), page.total) == (sorted(r for r in expected if r not in (
        visits["b_first_onco"]["id"], visits["boss_first_onco"]["id"]))[-2:], 2)
    page = service.list(rep_b, "visit", parse_query({"sort": "-amount", "limit": "3"}))
    assert [str(r["amount"]) for r in page.data] == ["11.00", "10.00", "9.00"]
    assert page.total == 14
    page = service.list(rep_b, "visit", parse_query({"q": "extra", "limit": "100"}))
    assert page.total == 12


def test_the_delete_rule_has_its_own_rows_without_own_records(world, territory):
    boss, rep_a, rep_b, first, second, visits = territory
    service = world.service
    visit = service.entity("visit")
    read, delete = service.share_walk(rep_b, visit), service.share_walk(rep_b, visit, "delete")
    assert read.own and not delete.own and read.key != delete.key
    own = service.get(rep_b, "visit", visits["b_first_onco"]["id"])
    assert service.allows(rep_b, visit, own, "delete")  # covered too
    rep_b_second = service.create(rep_b, "visit", {"hospital": first["id"], "line": "cardio"})
    assert service.readable(rep_b, visit, rep_b_second)  # own
    assert not service.allows(rep_b, visit, rep_b_second, "delete")  # not covered
    with pytest.raises(Forbidden):
        service.delete(rep_b, "visit", rep_b_second["id"], rep_b_second["version"])


def test_two_roles_or_a_where_over_share_rows_keep_the_query_time_union(world, territory):
    boss, rep_a, rep_b, first, second, visits = territory
    service = world.service
    visit = service.entity("visit")
    big = service.create(boss, "visit", {"hospital": second["id"], "line": "onco",
                                         "amount": "5000"})
    both = world.user("rep_ab", "med_rep", "big_deals")
    service.create(boss, "coverage", {"rep": both.user_id, "hospital": first["id"],
                                      "line": "onco"})
    assert service.share_walk(both, visit) is None  # two rules: a union
    expected = sorted([visits["b_first_onco"]["id"], visits["boss_first_onco"]["id"],
                       big["id"]])
    page = service.list(both, "visit", parse_query({"count": "exact"}))
    assert (ids(page), page.total) == (expected, 3)
    assert str(service.get(both, "visit", big["id"])["amount"]) == "5000.00"
    # through + where: the share rows filtered by the where; own records pass as they are
    key = world.user("key_a", "key_rep")
    service.create(boss, "coverage", {"rep": key.user_id, "hospital": first["id"],
                                      "line": "cardio"})
    cheap_own = service.create(key, "visit", {"hospital": second["id"], "line": "onco",
                                              "amount": "1"})
    assert service.share_walk(key, visit) is None
    assert ids(service.list(key, "visit")) == sorted([visits["a_first_cardio"]["id"],
                                                      cheap_own["id"]])
    assert_rows_are_what_a_rebuild_makes(world)


def test_concurrent_writes_keep_share_rows_exact(world, territory):
    """An assignment added in one transaction while another moves a record into its match
    values: whichever commits first, the rep ends up with the record."""
    boss, rep_a, rep_b, first, second, visits = territory
    service = world.service
    moving = visits["boss_first_onco"]
    written, done = threading.Event(), threading.Event()
    failures = []

    def add_assignment():
        try:
            with write_transaction(world.engine) as conn:
                service.create(boss, "coverage", {"rep": rep_b.user_id,
                                                  "hospital": second["id"], "line": "onco"},
                               conn=conn)
                written.set()
                time.sleep(0.5)  # the other writer runs meanwhile
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            written.set()
            done.set()

    thread = threading.Thread(target=add_assignment)
    thread.start()
    assert written.wait(10)
    # this write (the visit moves to the second hospital) runs while the assignment is
    # uncommitted; it must wait for it (SQLite: the write lock; PostgreSQL: the rule's lock
    # on these match values) and then see it
    service.update(boss, "visit", moving["id"], {"hospital": second["id"]}, moving["version"])
    assert done.wait(10)
    thread.join()
    assert failures == []
    assert moving["id"] in ids(service.list(rep_b, "visit"))
    assert_rows_are_what_a_rebuild_makes(world)


def test_ending_an_assignment_while_a_record_moves_in(world, territory):
    boss, rep_a, rep_b, first, second, visits = territory
    service = world.service
    coverage = [c for c in service.list(boss, "coverage").data
                if c["rep"] == rep_a.user_id and c["hospital"] == second["id"]][0]
    moving = visits["boss_first_onco"]
    written, done = threading.Event(), threading.Event()

    def move_record():
        try:
            with write_transaction(world.engine) as conn:
                service.update(boss, "visit", moving["id"],
                               {"hospital": second["id"], "line": "cardio"},
                               moving["version"], conn=conn)
                written.set()
                time.sleep(0.5)
        finally:
            written.set()
            done.set()

    thread = threading.Thread(target=move_record)
    thread.start()
    assert written.wait(10)
    service.delete(boss, "coverage", coverage["id"], coverage["version"])
    assert done.wait(10)
    thread.join()
    assert moving["id"] not in ids(service.list(rep_a, "visit"))
    assert_rows_are_what_a_rebuild_makes(world)


def test_migration_builds_the_rows_of_new_rules_and_rebuild_restores_them(world, territory):
    boss, rep_a, rep_b, first, second, visits = territory
    service = world.service
    with world.engine.connect() as conn:
        assert [s for s in plan_migration(conn, world.registry).steps
                if "sharing" in s.description] == []
    before = share_rows(world)
    # rows lost around the engine (and the record of the rule being built): the next
    # migration builds them again
    with write_transaction(world.engine) as conn:
        conn.execute(service.shares.table.delete())
        conn.execute(world.service.schema.engine["share_rule"].delete())
    assert ids(service.list(rep_a, "visit")) == []
    with world.engine.connect() as conn:
        steps = [s.description for s in plan_migration(conn, world.registry).steps]
    assert sorted(s for s in steps if "sharing" in s) == [
        "build sharing rows for hospital through coverage.rep (hospital=id)",
        "build sharing rows for visit through coverage.rep (hospital=hospital, line=line)",
        "build sharing rows for visit through coverage.rep (hospital=hospital, line=line) "
        "and own records"]
    migrate(world.engine, world.registry)
    assert share_rows(world) == before
    # a rule no role has any more: its rows are dropped
    with write_transaction(world.engine) as conn:
        conn.execute(world.service.schema.engine["share_rule"].insert().values(
            rule=42, entity="visit", description="gone", built_at=dt.datetime.now(dt.timezone.utc)))
        conn.execute(service.shares.table.insert().values(rule=42, user_id=rep_a.user_id,
                                                          record_id=1))
    with world.engine.connect() as conn:
        steps = [s.description for s in plan_migration(conn, world.registry).steps]
    assert "drop the sharing rows of a rule no longer configured (42)" in steps
    migrate(world.engine, world.registry)
    assert share_rows(world) == before
    # and `crm rebuild-sharing` recomputes everything
    lines = rebuild_all(world.engine, world.registry, world.service.schema)
    assert len(lines) == 3 and share_rows(world) == before


def test_crm_rebuild_sharing(world, territory, database_url, tmp_path):
    boss, rep_a, rep_b, first, second, visits = territory
    before = share_rows(world)
    with write_transaction(world.engine) as conn:  # rows lost around the engine
        conn.execute(world.service.shares.table.delete())
    env = dict(os.environ, CRM_CONTENT_ROOT=str(FIXTURES / "bare_root"),
               CRM_SITE=str(SHARING_SITE), CRM_DATABASE_URL=database_url)
    result = subprocess.run([sys.executable, str(Path(__file__).parents[1] / "cli.py"),
                             "rebuild-sharing"], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "hospital through coverage.rep (hospital=id): 3 rows",
        "visit through coverage.rep (hospital=hospital, line=line): 4 rows",
        # the owners' rows too: rep A's two visits, rep B's, and the boss's one
        "visit through coverage.rep (hospital=hospital, line=line) and own records: 5 rows"]
    assert share_rows(world) == before


def test_a_rule_through_the_records_own_entity(database_url, tmp_path):
    """"The tasks of the teams I have a task in": the assignments are the records themselves."""
    from tests.conftest import write_site
    site = write_site(tmp_path / "site", {
        "entities/task.yaml": """
            entity: task
            fields:
              member: {type: reference, to: user}
              team: {type: string}
            """,
        "roles.yaml": """
            roles:
              worker:
                entities:
                  task: {read: {through: task, user: member, match: {team: team}}}
              manager:
                entities:
                  task: {read: all, create: true, update: all, delete: all}
            """})
    w = World(database_url, site=site)  # migrating builds the rule's share rows
    boss, a, b = w.user("boss", "manager"), w.user("a", "worker"), w.user("b", "worker")
    mine = w.service.create(boss, "task", {"member": a.user_id, "team": "x"})
    mate = w.service.create(boss, "task", {"member": b.user_id, "team": "x"})
    other = w.service.create(boss, "task", {"team": "y"})

    def seen(caller):
        return sorted(r["id"] for r in w.service.list(caller, "task", parse_query({})).data)

    assert seen(a) == seen(b) == [mine["id"], mate["id"]]
    w.service.update(boss, "task", mate["id"], {"team": "y"}, mate["version"])
    assert (seen(a), seen(b)) == ([mine["id"]], [mate["id"], other["id"]])
    rebuild_all(w.engine, w.registry, w.service.schema)
    assert (seen(a), seen(b)) == ([mine["id"]], [mate["id"], other["id"]])
    w.engine.dispose()
