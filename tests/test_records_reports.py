"""Reports: GROUP BY in the database after row permissions, with exact expected numbers."""

import datetime as dt

import pytest
import sqlalchemy as sa

from engine.errors import Forbidden, NotFound
from engine.records.reports import run_report


@pytest.fixture
def deals(world):
    admin = world.user("admin1", "admin")
    rep1, rep2 = world.user("rep1", "rep"), world.user("rep2", "rep")
    a1 = world.service.create(rep1, "account", {"name": "A1"})
    a2 = world.service.create(rep2, "account", {"name": "A2"})
    plan = [(rep1, a1, "100", "win"), (rep1, a1, "50", "win"), (rep1, a1, "20", "lose"),
            (rep1, a1, None, None), (rep2, a2, "1000", "win"), (rep2, a2, "5", None)]
    for caller, account, amount, transition in plan:
        deal = world.service.create(caller, "deal", {"title": "d", "account": account["id"],
                                                     "amount": amount})
        if transition:
            world.service.transition(admin, "deal", deal["id"], transition)
    return admin, rep1, rep2


def test_group_by_with_measures_and_expressions(world, deals):
    admin, rep1, _ = deals
    result = run_report(world.service, admin, "deals_by_stage")
    assert [c["name"] for c in result["columns"]] == ["stage", "deals", "won", "value",
                                                     "average", "biggest", "share"]
    assert result["rows"] == [
        ["won", 3, 3, 1150.0, 383.333333, 1000.0, 383.333333],
        ["lost", 1, 0, 20.0, 20.0, 20.0, 20.0],
        ["open", 2, 0, 5.0, 5.0, 5.0, 2.5],
    ]


def test_a_rep_counts_only_what_the_rep_may_read(world, deals):
    _, rep1, _ = deals
    result = run_report(world.service, rep1, "deals_by_stage")
    assert result["rows"] == [
        ["won", 2, 2, 150.0, 75.0, 100.0, 75.0],
        ["lost", 1, 0, 20.0, 20.0, 20.0, 20.0],
        ["open", 1, 0, 0, None, None, 0.0],
    ]


def test_filters_buckets_and_division_by_zero(world, deals):
    admin = deals[0]
    filtered = run_report(world.service, admin, "deals_by_stage", {"amount__gte": "50"})
    assert [(r[0], r[1]) for r in filtered["rows"]] == [("won", 3)]
    month = dt.date.today().strftime("%Y-%m")
    by_month = run_report(world.service, admin, "deals_by_month")
    assert by_month["rows"] == [[month, 5, None]]  # 5 deals have an amount; x / 0.0 is no value
    assert by_month["columns"][0]["name"] == "created_at:month"


def test_unknown_and_unreadable_reports(world, deals):
    with pytest.raises(NotFound):
        run_report(world.service, deals[0], "nothing")
    with pytest.raises(NotFound):
        run_report(world.service, world.user("v", "viewer"), "deals_by_stage")  # no deal access


def test_report_over_the_api(world, deals):
    from web import create_app
    world.users.create("boss", "pw", ["admin"])
    client = create_app(world.registry, world.engine).test_client()
    token = client.post("/api/v1/auth/token", json={"username": "boss", "password": "pw"}
                        ).json["token"]
    response = client.get("/api/v1/reports/deals_by_stage?stage=won",
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json["rows"] == [["won", 3, 3, 1150.0, 383.333333, 1000.0, 383.333333]]


def test_every_shipped_report_runs(database_url):
    """Each report of the standard model and every pack runs on an empty database."""
    import engine
    from engine.records.access import SYSTEM
    from engine.records.service import RecordService
    from engine.storage.database import connect
    from engine.storage.migrate import migrate
    for pack in [None] + sorted(engine.available_packs()):
        registry = engine.load_registry(pack=pack)
        db = connect(database_url)
        migrate(db, registry)
        service = RecordService(registry, db)
        for name in registry.reports:
            result = run_report(service, SYSTEM, name)
            assert len(result["columns"]) >= 1
        db.dispose()
