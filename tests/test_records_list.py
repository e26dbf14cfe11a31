"""Listing: filters, operators, text search, sort with empty values last, cursors, totals."""

import pytest
import sqlalchemy as sa

from engine.errors import BadRequest, NotFound, ValidationFailed
from engine.records.listing import parse_query


def listing(world, caller, **params):
    return world.service.list(caller, "account", parse_query(params))


@pytest.fixture
def accounts(world):
    admin = world.user("admin1", "admin")
    rows = [("Alpha 重点客户", "a", "100", 5), ("beta_corp", "b", None, 10), ("Gamma", "c", "50", None),
            ("Delta 100%", "a", "75.5", 20), ("epsilon", None, "0", 1)]
    for name, tier, credit, employees in rows:
        world.service.create(admin, "account", {"name": name, "tier": tier,
                                                "credit_limit": credit, "employees": employees,
                                                "tax_id": "t"})
    return admin


def names(page):
    return [r["name"] for r in page.data]


def test_filters_and_operators(world, accounts):
    admin = accounts
    assert names(listing(world, admin, tier="a", sort="name")) == ["Alpha 重点客户", "Delta 100%"]
    assert names(listing(world, admin, tier__ne="a", sort="name")) == ["Gamma", "beta_corp",
                                                                     "epsilon"]
    assert names(listing(world, admin, employees__gte="10", sort="name")) == ["Delta 100%",
                                                                            "beta_corp"]
    assert names(listing(world, admin, credit_limit__lt="60", sort="name")) == ["Gamma",
                                                                              "epsilon"]
    assert names(listing(world, admin, tier__in="b,c", sort="name")) == ["Gamma", "beta_corp"]
    assert names(listing(world, admin, credit_limit__isnull="true")) == ["beta_corp"]
    assert names(listing(world, admin, name__contains="ALP")) == ["Alpha 重点客户"]
    assert names(listing(world, admin, name__contains="100%")) == ["Delta 100%"]
    assert names(listing(world, admin, name__contains="_")) == ["beta_corp"]  # literal, not a wildcard
    assert names(listing(world, admin, name__contains="%")) == ["Delta 100%"]
    assert names(listing(world, admin, tier="a", employees__lt="10")) == ["Alpha 重点客户"]



def test_yes_no_fields_filter_with_equality(world, accounts):
    admin = accounts
    first = world.service.list(admin, "account", parse_query({"sort": "name"})).data[0]
    world.service.update(admin, "account", first["id"], {"active": False}, first["version"])
    assert names(listing(world, admin, active="false")) == ["Alpha 重点客户"]
    assert names(listing(world, admin, active="是", sort="name")) == [
        "Delta 100%", "Gamma", "beta_corp", "epsilon"]
    assert names(listing(world, admin, active__ne="true")) == ["Alpha 重点客户"]
    with pytest.raises(BadRequest) as refused:
        listing(world, admin, active__lt="true")
    assert refused.value.fields == {
        "active__lt": ["'active' is yes/no: filter it with =, __ne, __in or __isnull"]}


def test_text_search(world, accounts):
    admin = accounts
    assert names(listing(world, admin, q="重点")) == ["Alpha 重点客户"]  # Chinese inside a word
    assert names(listing(world, admin, q="gamma")) == ["Gamma"]
    assert names(listing(world, admin, q="alp 客户")) == ["Alpha 重点客户"]
    assert names(listing(world, admin, q="corp")) == ["beta_corp"]
    assert names(listing(world, admin, q="nothing-like-this")) == []
    assert names(listing(world, admin, q="'); drop table e_account; --")) == []
    record = world.service.list(admin, "account", parse_query({"q": "gamma"})).data[0]
    world.service.update(admin, "account", record["id"], {"name": "Renamed"}, record["version"])
    assert names(listing(world, admin, q="gamma")) == []
    assert names(listing(world, admin, q="renamed")) == ["Renamed"]


def test_sort_with_empty_values_last_both_ways_and_id_tiebreak(world, accounts):
    admin = accounts
    asc = listing(world, admin, sort="credit_limit")
    assert [r["credit_limit"] for r in asc.data][-1] is None
    desc = listing(world, admin, sort="-credit_limit")
    assert [str(r["credit_limit"]) for r in desc.data] == ["100.00", "75.50", "50.00", "0.00",
                                                          "None"]
    tied = listing(world, admin, sort="tier")
    tiers = [(r["tier"], r["id"]) for r in tied.data]
    assert tiers == sorted(tiers, key=lambda t: (t[0] is None, t[0] or "", t[1]))


def test_cursor_pages_are_stable_under_inserts(world, accounts):
    admin = accounts
    first = listing(world, admin, sort="-employees", limit="2")
    assert first.total == 5 and first.next_cursor
    world.service.create(admin, "account", {"name": "Zeta", "employees": 100, "tax_id": "t"})
    second = listing(world, admin, sort="-employees", limit="2", cursor=first.next_cursor)
    third = listing(world, admin, sort="-employees", limit="2", cursor=second.next_cursor)
    seen = names(first) + names(second) + names(third)
    assert seen == ["Delta 100%", "beta_corp", "Alpha 重点客户", "epsilon", "Gamma"]
    assert third.next_cursor is None
    with pytest.raises(BadRequest) as caught:
        listing(world, admin, sort="name", cursor=first.next_cursor)
    assert list(caught.value.fields) == ["cursor"]


def test_fields_projection_and_titles(world, accounts):
    admin = accounts
    parent = listing(world, admin, name="Gamma").data[0]
    world.service.create(admin, "account", {"name": "Sub", "parent": parent["id"]})
    page = listing(world, admin, name="Sub", fields="name,parent")
    assert page.data == [{"id": page.data[0]["id"], "version": 1, "name": "Sub",
                          "parent": parent["id"]}]
    assert page.titles["parent"] == {parent["id"]: "Gamma"}


def test_bad_parameters_name_the_parameter(world, accounts):
    admin = accounts
    for params, name in [({"nope": "1"}, "nope"), ({"tier__like": "a"}, "tier__like"),
                         ({"employees__gt": "many"}, "employees__gt"), ({"sort": "nope"}, "sort"),
                         ({"fields": "name,nope"}, "fields"), ({"limit": "501"}, "limit"),
                         ({"limit": "x"}, "limit"), ({"founded": "2024-13-01"}, "founded"),
                         ({"tier": "z"}, "tier"), ({"name__isnull": "maybe"}, "name__isnull"),
                         ({"cursor": "garbage"}, "cursor"), ({"count": "all"}, "count"),
                         ({"sort": "name;drop table x"}, "sort")]:
        with pytest.raises(BadRequest) as caught:
            listing(world, admin, **params)
        assert list(caught.value.fields) == [name], params


def test_hidden_fields_cannot_be_filtered_sorted_or_selected(world, accounts):
    rep = world.user("rep1", "rep")
    for params, name in [({"secret": "x"}, "secret"), ({"sort": "secret"}, "sort"),
                         ({"fields": "secret"}, "fields")]:
        with pytest.raises(BadRequest) as caught:
            listing(world, rep, **params)
        assert list(caught.value.fields) == [name]


def test_rows_a_caller_may_not_read_do_not_exist(world, accounts):
    rep1, rep2 = world.user("rep1", "rep"), world.user("rep2", "rep")
    world.service.create(rep1, "account", {"name": "Mine 重点"})
    assert names(listing(world, rep1)) == ["Mine 重点"]
    assert listing(world, rep2).total == 0
    assert names(listing(world, rep2, q="重点")) == []
    with pytest.raises(NotFound):  # no read access: the entity does not exist for this user
        world.service.list(world.user("nobody"), "account", parse_query({}))


def test_total_is_capped_unless_exact(world):
    admin = world.user("admin1", "admin")
    table = world.service.schema.entities["account"]
    now = "2024-01-01 00:00:00"
    import datetime as dt
    stamp = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    with world.engine.begin() as conn:
        conn.execute(table.insert(), [{"name": f"n{i}", "version": 1, "created_at": stamp,
                                       "updated_at": stamp, "owner": admin.user_id}
                                      for i in range(10_005)])
    page = listing(world, admin, limit="5")
    assert (page.total, page.total_capped) == (10_000, True)
    exact = listing(world, admin, limit="5", count="exact")
    assert (exact.total, exact.total_capped) == (10_005, False)


def test_a_page_costs_a_fixed_number_of_statements(world):
    admin = world.user("admin1", "admin")
    parent = world.service.create(admin, "account", {"name": "P"})
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    for n in (3, 30):
        for i in range(n):
            world.service.create(admin, "account", {"name": f"c{n}-{i}", "parent": parent["id"]})
        statements.clear()
        sa.event.listen(world.engine, "before_cursor_execute", count)
        page = listing(world, admin, limit=str(n))
        sa.event.remove(world.engine, "before_cursor_execute", count)
        assert len(page.data) == n
        if n == 3:
            few = len(statements)
    assert len(statements) == few


HOSTILE = ["'; DROP TABLE e_account; --", '" OR 1=1 --', "%", "_", "\\", "NULL",
           "1) OR (1=1", "名称' --", "a" * 5000]


@pytest.mark.parametrize("payload", HOSTILE)
def test_sql_metacharacters_in_every_parameter(world, accounts, payload):
    admin = accounts
    before = listing(world, admin).total
    all_names = names(listing(world, admin))
    containing = sorted(n for n in all_names if payload.lower() in n.lower())
    for params in ({"name": payload}, {"name__in": payload}):
        assert listing(world, admin, **params).total == 0
    for params in ({"name__contains": payload}, {"q": payload}):
        assert sorted(names(listing(world, admin, **params))) == containing
    for params in ({"sort": payload}, {"fields": payload}, {payload: "1"},
                   {"employees__gt": payload}):
        with pytest.raises(BadRequest):
            listing(world, admin, **params)
    assert listing(world, admin).total == before


def test_rollups_follow_a_record_that_moves_between_parents(world):
    admin = world.user("admin1", "admin")
    a = world.service.create(admin, "account", {"name": "A"})
    b = world.service.create(admin, "account", {"name": "B"})
    deal = world.service.create(admin, "deal", {"title": "D", "account": a["id"],
                                                "amount": "10"})
    assert world.service.get(admin, "account", a["id"])["deal_total"] == 10
    world.service.update(admin, "deal", deal["id"], {"account": b["id"]}, deal["version"])
    assert world.service.get(admin, "account", a["id"])["deal_total"] == 0
    assert world.service.get(admin, "account", b["id"])["deal_total"] == 10
    world.service.delete(admin, "deal", deal["id"], deal["version"] + 1)
    assert world.service.get(admin, "account", b["id"])["deal_total"] == 0


def test_nul_characters_are_refused(world, accounts):
    for params in ({"name": "a\x00b"}, {"q": "\x00"}, {"name__contains": "\x00"}):
        with pytest.raises(BadRequest) as caught:
            listing(world, accounts, **params)
        assert list(caught.value.fields) == [next(iter(params))]
    with pytest.raises(ValidationFailed):
        world.service.create(accounts, "account", {"name": "a\x00b"})


def test_hidden_fields_leak_through_no_search_sort_or_title(world, accounts):
    admin, rep = accounts, world.user("rep1", "rep")
    mine = world.service.create(rep, "account", {"name": "Mine"})
    world.service.update(admin, "account", mine["id"], {"secret": "zebracode"}, 1)
    assert names(listing(world, admin, q="zebracode")) == []  # not a search field
    page = listing(world, rep, sort="-created_at", limit="1")
    assert page.data and "secret" not in page.data[0]


def test_cursor_over_a_datetime_sort(world, accounts):
    first = listing(world, accounts, sort="-created_at", limit="2")
    second = listing(world, accounts, sort="-created_at", limit="2", cursor=first.next_cursor)
    assert len(second.data) == 2
    assert not set(names(first)) & set(names(second))
