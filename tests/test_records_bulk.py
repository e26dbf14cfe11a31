"""Bulk creation (import) gives exactly the records and errors that one-by-one creation gives."""

import sqlalchemy as sa

from engine.errors import RecordError
from engine.records.bulk import create_many
from engine.storage.database import write_transaction

ROWS = [
    {"name": "Pen", "price": "1.50"},
    {"name": "", "price": "2"},
    {"name": "Ink", "price": "abc"},
    {"name": "Paper", "colour": "red"},
    {"name": "Desk", "price": 120},
    {"name": "x" * 300},
    {"name": "Lamp", "price": None},
]


def outcome_by_one(world, caller, entity, row):
    try:
        record = world.service.create(caller, entity, row)
        return {k: v for k, v in record.items() if k not in ("id", "created_at", "updated_at")}
    except RecordError as exc:
        return exc.fields


def test_bulk_and_one_by_one_agree(world):
    admin = world.user("admin1", "admin")
    expected = [outcome_by_one(world, admin, "product", row) for row in ROWS]
    with write_transaction(world.engine) as conn:
        outcomes = create_many(world.service, admin, "product", ROWS, conn)
    got = []
    for outcome in outcomes:
        if outcome.error is not None:
            got.append(outcome.error.fields)
        else:
            record = world.service.get(admin, "product", outcome.record_id)
            got.append({k: v for k, v in record.items()
                        if k not in ("id", "created_at", "updated_at")})
    assert got == expected
    history, _ = world.service.history(admin, "product", outcomes[0].record_id)
    one_by_one_history, _ = world.service.history(admin, "product", 1)
    assert history[0]["changes"] == one_by_one_history[0]["changes"]


def test_bulk_checks_references_and_unique_values_per_batch(world):
    admin, rep = world.user("admin1", "admin"), world.user("rep1", "rep")
    mine = world.service.create(rep, "account", {"name": "Mine"})
    theirs = world.service.create(admin, "account", {"name": "Theirs", "owner": admin.user_id})
    rows = [{"body": "a", "account": mine["id"]}, {"body": "b", "account": theirs["id"]},
            {"body": "c", "account": 99999}]
    with write_transaction(world.engine) as conn:
        outcomes = create_many(world.service, rep, "note", rows, conn)
    assert outcomes[0].error is None
    assert outcomes[1].error.fields == {"account": ["refers to a record that does not exist"]}
    assert outcomes[2].error.fields == {"account": ["refers to a record that does not exist"]}
    rows = [{"name": "A", "code": "AB-001"}, {"name": "B", "code": "AB-001"},
            {"name": "C", "code": "AB-002"}]
    with write_transaction(world.engine) as conn:
        outcomes = create_many(world.service, admin, "account", rows, conn)
    assert [o.error.fields if o.error else None for o in outcomes] == [
        None, {"code": ["must be unique; another record has this value"]}, None]
    with write_transaction(world.engine) as conn:
        again = create_many(world.service, admin, "account", [{"name": "D", "code": "AB-002"}],
                            conn)
    assert again[0].error.fields == {"code": ["must be unique; another record has this value"]}
    with world.engine.connect() as conn:
        search = conn.execute(sa.text("select count(*) from e_account")).scalar()
    assert search == 4
