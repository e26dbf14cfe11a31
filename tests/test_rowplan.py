"""The bulk path's compiled coercers and row plan agree with `coerce` and with one-by-one
creation, on generated input and on batches mixing good and bad rows."""

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine.errors import RecordError
from engine.records.bulk import create_many
from engine.records.listing import parse_query
from engine.records.rowplan import compile_coercer
from engine.records.values import Invalid, coerce
from engine.storage.database import write_transaction
from tests.conftest import BARE_ROOT, World, write_site

CONTACT = """
entity: contact
fields:
  name: {type: string, required: true, max_length: 20}
  code: {type: string, unique: true, pattern: "[A-Z]{2}-[0-9]{3}"}
  email: {type: email}
  phone: {type: phone}
  website: {type: url}
  tier: {type: enum, options: [a, b, c], default: c}
  employees: {type: integer, min: 0, max: 1000000}
  big: {type: integer}
  revenue: {type: money, min: 0}
  discount: {type: percent, max: 50.5}
  score: {type: decimal, precision: 6, scale: 3}
  active: {type: boolean, default: true}
  since: {type: date, min: 1990-01-01, max: 2030-12-31}
  notes: {type: text, max_length: 40}
  parent: {type: reference, to: contact}
"""
@pytest.fixture(scope="module")
def contact_site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rowplan")
    return write_site(folder / "site", {"entities/contact.yaml": CONTACT})


@pytest.fixture(scope="module")
def contact(contact_site):
    return engine.load_registry(site=contact_site, root=BARE_ROOT).entities["contact"]


def outcome(function, *args):
    try:
        value = function(*args)
        return "ok", type(value).__name__, value
    except Invalid as exc:
        return "invalid", exc.message.key, exc.message.params


TEXTS = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=string.digits + " +-.,eE_", max_size=25),
    st.from_regex(r"\s?[+-]?\d{1,22}(\.\d{0,6})?\s?", fullmatch=True),
    st.from_regex(r"\d{4}-\d{2}-\d{2}", fullmatch=True),
    st.sampled_from(["", " ", "\t", "a", "b", " c ", "true", "FALSE", "是", "否", "yes", "n",
                     "AB-123", "ab-123", "x@y.cn", "a b@c.d", "https://x.cn/p", "ftp://x",
                     "+86 21 1234", "1e3", "1E-2", "NaN", "Infinity", "-0", "50.5", "50.51",
                     "0.0005", "999.9995", "1_000", "٣٤", "9223372036854775808", "\x00a",
                     "2024-02-30", "1989-12-31", "2031-01-01"]),
    st.none(), st.integers(), st.booleans(), st.floats(allow_nan=True))


@settings(max_examples=400, deadline=None)
@given(raw=TEXTS)
def test_compiled_coercers_agree_with_coerce(contact, raw):
    for field in contact.fields.values():
        if field.kind.stored and field.kind.writable:
            assert outcome(compile_coercer(field), raw) == outcome(coerce, field, raw), field.name


ROWS = [  # one CSV: the same keys on every row; good rows between bad ones
    {"name": "Ann", "code": "AB-001", "employees": "10", "revenue": "1,000.5", "since": "2001-02-03",
     "active": "yes", "parent": ""},
    {"name": "", "code": "AB-002", "employees": "10", "revenue": "5", "since": "", "active": "",
     "parent": ""},
    {"name": "Bob", "code": "AB-003", "employees": "-1", "revenue": "x", "since": "2001-02-30",
     "active": "maybe", "parent": ""},
    {"name": "Cy", "code": "AB-001", "employees": " 7 ", "revenue": "0.005", "since": "1999-01-01",
     "active": "否", "parent": ""},
    {"name": "Di", "code": "AB-004", "employees": "", "revenue": "", "since": "", "active": "1",
     "parent": "1"},
    {"name": "Ed", "code": "AB-005", "employees": "3", "revenue": "2", "since": "2020-01-01",
     "active": "0", "parent": "9999"},
]


def by_one(world, caller, row):
    try:
        record = world.service.create(caller, "contact", row)
        return {k: v for k, v in record.items() if k not in ("id", "created_at", "updated_at")}
    except RecordError as exc:
        return exc.fields


def test_a_csv_batch_gives_what_one_by_one_creation_gives(database_url, contact_site, tmp_path):
    first = World(database_url, site=contact_site)
    admin = first.user("admin1", "admin")
    first.service.create(admin, "contact", {"name": "Zed"})  # the record row 5 refers to
    expected = [by_one(first, admin, row) for row in ROWS]
    first.engine.dispose()
    assert [type(e).__name__ for e in expected] == ["dict"] * 6
    assert sum("name" not in e or "version" not in e for e in expected) == 4  # four refused

    url = database_url.replace("test.db", "bulk.db") if database_url.startswith("sqlite") \
        else database_url
    second = World(url, site=contact_site) if url != database_url else None
    if second is None:  # PostgreSQL: one database per test; clear it for the second run
        second = World(database_url, site=contact_site)
        with write_transaction(second.engine) as conn:
            conn.exec_driver_sql("DELETE FROM crm_audit")
            conn.exec_driver_sql("DELETE FROM e_contact")
            conn.exec_driver_sql("ALTER SEQUENCE e_contact_id_seq RESTART WITH 1")
            conn.exec_driver_sql("DELETE FROM crm_sequence")
    admin = second.user("admin1", "admin")
    second.service.create(admin, "contact", {"name": "Zed"})
    with write_transaction(second.engine) as conn:
        outcomes = create_many(second.service, admin, "contact", ROWS, conn)
    got = []
    for result in outcomes:
        if result.error is not None:
            got.append(result.error.fields)
        else:
            record = second.service.get(admin, "contact", result.record_id)
            got.append({k: v for k, v in record.items()
                        if k not in ("id", "created_at", "updated_at")})
    assert got == expected
    created = [o.record_id for o in outcomes if o.record_id is not None]
    history, _ = second.service.history(admin, "contact", created[0])
    assert history == [{"at": history[0]["at"], "user": admin.user_id, "action": "create",
                        "changes": {"name": [None, "Ann"], "code": [None, "AB-001"],
                                    "tier": [None, "c"], "employees": [None, 10],
                                    "revenue": [None, "1000.50"], "active": [None, True],
                                    "since": [None, "2001-02-03"],
                                    "owner": [None, admin.user_id]}}]
    found = second.service.list(admin, "contact", parse_query({"q": "Ann"})).data
    assert [r["id"] for r in found] == [created[0]]
    second.engine.dispose()
