"""Automations: event automations in the triggering transaction, schedules once per tick."""

import datetime as dt

import pytest
import sqlalchemy as sa

from conftest import FIXTURES, World
from engine.errors import ValidationFailed
from engine.records.automations import current_tick

PROCESS_SITE = FIXTURES / "sites" / "process"
UTC = dt.timezone.utc


@pytest.fixture
def flow(database_url):
    world = World(database_url, site=PROCESS_SITE)
    yield world
    world.engine.dispose()


def count(world, table):
    with world.engine.connect() as conn:
        return conn.execute(sa.text(f"select count(*) from {table}")).scalar()


def test_created_event_creates_and_notifies_in_the_same_transaction(flow):
    rep, agent = flow.user("rep", "rep"), flow.user("agent", "rep")
    ticket = flow.service.create(rep, "ticket", {"subject": "Pump leaks",
                                                 "assignee": agent.user_id})
    activities = flow.service.list(rep, "activity").data
    assert [(a["subject"], a["ticket"]) for a in activities] == [("Follow up Pump leaks",
                                                                  ticket["id"])]
    notes, _ = flow.service.notifications(agent)
    assert [n["message"] for n in notes] == ["A ticket was assigned to you"]
    zh = flow.users.caller(agent.user_id, locale="zh")
    assert flow.service.notifications(zh)[0][0]["message"] == "有工单分配给您"
    assert flow.service.notifications(rep)[0] == []


def test_an_automation_does_not_trigger_itself_on_the_same_record(flow):
    rep = flow.user("rep", "rep")
    ticket = flow.service.create(rep, "ticket", {"subject": "A"})
    assert ticket["touches"] == 0
    ticket = flow.service.update(rep, "ticket", ticket["id"], {"subject": "B"}, 1)
    assert ticket["touches"] == 1  # its own set did not fire `updated` again
    history, _ = flow.service.history(rep, "ticket", ticket["id"])
    assert [h["action"] for h in history] == ["automation:count_touches", "update", "create"]


def test_transition_event_and_unread_notifications(flow):
    rep = flow.user("rep", "rep")
    ticket = flow.service.create(rep, "ticket", {"subject": "Done soon"})
    flow.service.transition(rep, "ticket", ticket["id"], "close")
    notes, _ = flow.service.notifications(rep, unread_only=True)
    assert [n["message"] for n in notes] == ["Your ticket was closed"]
    assert flow.service.mark_read(rep) == 1
    assert flow.service.notifications(rep, unread_only=True)[0] == []
    assert flow.service.notifications(rep)[0][0]["read"] is True


def test_schedule_runs_once_per_tick_and_records_failures(flow):
    rep, manager = flow.user("rep", "rep"), flow.user("boss", "manager")
    past = dt.datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
    overdue = flow.service.create(rep, "ticket", {"subject": "late", "due_at": past})
    later = flow.service.create(rep, "ticket", {"subject": "fine",
                                                "due_at": past + dt.timedelta(days=3650)})
    now = dt.datetime(2024, 6, 1, 9, 7, tzinfo=UTC)
    lines = flow.service.automations.run_due(now)
    assert lines == ["escalate_overdue: 1 records, 0 failed (tick 2024-06-01T09:00:00+00:00)"]
    assert flow.service.automations.run_due(now + dt.timedelta(minutes=5)) == []  # same tick
    escalated = flow.service.get(rep, "ticket", overdue["id"])
    assert (escalated["state"], escalated["priority"]) == ("escalated", "urgent")
    assert flow.service.get(rep, "ticket", later["id"])["state"] == "open"
    assert [n["title"] for n in flow.service.notifications(manager)[0]] == ["Overdue"]
    next_tick = flow.service.automations.run_due(now + dt.timedelta(minutes=15))
    assert next_tick == ["escalate_overdue: 0 records, 0 failed (tick 2024-06-01T09:15:00+00:00)"]


def test_a_failing_record_does_not_stop_the_others(flow, monkeypatch):
    rep = flow.user("rep", "rep")
    past = dt.datetime(2024, 1, 1, tzinfo=UTC)
    first = flow.service.create(rep, "ticket", {"subject": "one", "due_at": past})
    second = flow.service.create(rep, "ticket", {"subject": "two", "due_at": past})
    original = flow.service.transition

    def failing(caller, entity, record_id, name, *args, **kwargs):
        if record_id == first["id"]:
            raise ValidationFailed("boom")
        return original(caller, entity, record_id, name, *args, **kwargs)
    monkeypatch.setattr(flow.service, "transition", failing)
    lines = flow.service.automations.run_due(dt.datetime(2024, 6, 1, 12, 0, tzinfo=UTC))
    assert lines == ["escalate_overdue: 1 records, 1 failed (tick 2024-06-01T12:00:00+00:00)"]
    assert flow.service.get(rep, "ticket", first["id"])["state"] == "open"  # rolled back
    assert flow.service.get(rep, "ticket", second["id"])["state"] == "escalated"
    with flow.engine.connect() as conn:
        failure = conn.execute(sa.text("select automation, record_id, error from "
                                       "crm_automation_failure")).one()
    assert failure[0] == "escalate_overdue" and failure[1] == first["id"]
    assert "boom" in failure[2]


def test_ticks():
    from engine.registry.model import Automation
    every = Automation("a", None, "x", None, None, "every 15m", 900, None, None, ())
    daily = Automation("b", None, "x", None, None, "daily at 08:30", None, "08:30", None, ())
    at = dt.datetime(2024, 6, 1, 8, 20, tzinfo=UTC)
    assert current_tick(every, at) == dt.datetime(2024, 6, 1, 8, 15, tzinfo=UTC)
    assert current_tick(daily, at) == dt.datetime(2024, 5, 31, 8, 30, tzinfo=UTC)
    assert current_tick(daily, at.replace(hour=9)) == dt.datetime(2024, 6, 1, 8, 30, tzinfo=UTC)


def test_assignment_rules_route_new_records(flow):
    reps = [flow.user(name, "rep") for name in ("amy", "ben", "cat")]
    boss, nora = flow.user("boss", "manager"), flow.user("nora", "rep")
    owners = [flow.service.create(reps[0], "inquiry", {"subject": f"q{i}", "region": "east"})
              ["owner"] for i in range(8)]
    rep_ids = sorted([r.user_id for r in reps] + [nora.user_id])
    assert owners == [rep_ids[i % 4] for i in range(8)]  # round robin over every rep, in turn
    assert flow.service.create(reps[1], "inquiry", {"subject": "n", "region": "north"})[
        "owner"] == nora.user_id
    assert flow.service.create(reps[1], "inquiry", {"subject": "v", "vip": True,
                                                    "region": "north"})["owner"] == boss.user_id
    admin = flow.user("root", "admin")
    explicit = flow.service.create(admin, "inquiry", {"subject": "x", "owner": reps[2].user_id})
    assert explicit["owner"] == reps[2].user_id


def test_assignment_mistakes_are_reported(tmp_path):
    from conftest import BARE_ROOT, problems_of, write_site
    site = write_site(tmp_path / "s", {"entities/a.yaml": """
        entity: a
        fields: {region: {type: string}}
        assignment:
          - round_robin: {role: nobody}
          - {user: x, by_field: {field: region, map: {}}}
          - by_field: {field: regoin, map: {e: x}}
          - when: "region"
            user: x
        """})
    assert problems_of(site, root=BARE_ROOT) == [
        ("entities/a.yaml", 4, 25, "unknown-role"),
        ("entities/a.yaml", 5, 5, "assignment-kind"),
        ("entities/a.yaml", 6, 23, "unknown-field"),
        ("entities/a.yaml", 7, 11, "expr-not-boolean"),
    ]
