"""Sharing rules (roles beyond own and all): a rep reads the hospitals and visits of the
product lines they cover, on every read path, and writes only where a rule allows."""

import pytest

from engine.errors import Forbidden, NotFound
from engine.records.bulk import create_many
from engine.records.listing import parse_query
from engine.records.reports import run_report
from engine.records.transfer import export_rows
from engine.storage.database import write_transaction
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
