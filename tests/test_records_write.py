"""The record service: creating, changing and deleting records with every rule enforced."""

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from engine.errors import Conflict, Forbidden, NotFound, PreconditionRequired, ValidationFailed
from engine.records.access import SYSTEM


def fields_of(exc_info) -> dict:
    return exc_info.value.fields


def test_create_sets_system_fields_defaults_and_computes(world):
    rep = world.user("rep1", "rep")
    record = world.service.create(rep, "account", {"name": "Acme", "tier": "a",
                                                   "tax_id": "T1"})
    assert record["id"] and record["version"] == 1
    assert record["owner"] == rep.user_id and record["created_by"] == rep.user_id
    assert record["active"] is True  # default
    assert record["vip_label"] == "ACME"  # computed
    assert record["created_at"].tzinfo is not None
    assert "secret" not in record  # hidden from reps
    assert record["open_deals"] == Decimal("0.00") and record["deal_total"] == Decimal("0.00")


def test_every_bad_field_is_reported_and_nothing_is_written(world):
    admin = world.user("admin1", "admin")
    with pytest.raises(ValidationFailed) as caught:
        world.service.create(admin, "account", {
            "name": "x" * 51, "code": "bad", "tier": "z", "email": "not-mail",
            "phone": "12", "website": "ftp://x", "employees": -1, "credit_limit": "abc",
            "discount": 101, "rating": "12345.6", "active": "maybe", "founded": "1800-01-01",
            "last_contact": "yesterday", "tags": ["vip", "nope"], "parent": 999,
            "manager_user": 999})
    assert set(fields_of(caught)) == {
        "name", "code", "tier", "email", "phone", "website", "employees", "credit_limit",
        "discount", "rating", "active", "founded", "last_contact", "tags", "parent",
        "manager_user"}
    with world.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from e_account")).scalar() == 0


def test_references_must_exist_and_be_readable(world):
    admin = world.user("admin1", "admin")
    with pytest.raises(ValidationFailed) as caught:
        world.service.create(admin, "account", {"name": "A", "parent": 999,
                                                "manager_user": 999})
    assert set(fields_of(caught)) == {"parent", "manager_user"}
    rep1, rep2 = world.user("rep1", "rep"), world.user("rep2", "rep")
    other = world.service.create(rep2, "account", {"name": "Theirs"})
    with pytest.raises(ValidationFailed) as caught:
        world.service.create(rep1, "deal", {"title": "D", "account": other["id"]})
    assert fields_of(caught) == {"account": ["refers to a record that does not exist"]}


def test_protected_fields_are_refused_by_name(world):
    manager = world.user("m", "manager")
    with pytest.raises(ValidationFailed) as caught:
        world.service.create(manager, "account", {
            "name": "A", "id": 5, "version": 3, "created_at": "2020-01-01T00:00:00Z",
            "deleted_at": None, "vip_label": "x", "open_deals": 3, "credit_limit": 10,
            "nonsense": 1})
    assert set(fields_of(caught)) == {"id", "version", "created_at", "deleted_at", "vip_label",
                                      "open_deals", "credit_limit", "nonsense"}
    rep = world.user("r", "rep")
    with pytest.raises(ValidationFailed) as caught:
        world.service.create(rep, "account", {"name": "A", "secret": "s", "owner": manager.user_id})
    assert set(fields_of(caught)) == {"secret", "owner"}
    account = world.service.create(admin := world.user("a", "admin"), "account", {"name": "B"})
    with pytest.raises(ValidationFailed) as caught:
        world.service.create(admin, "deal", {"title": "T", "account": account["id"],
                                             "stage": "won", "number": "X", "lines_total": 1})
    assert set(fields_of(caught)) == {"stage", "number", "lines_total"}


def test_required_if_read_only_if_and_validation_rules(world):
    admin = world.user("admin1", "admin")
    with pytest.raises(ValidationFailed) as caught:
        world.service.create(admin, "account", {"name": "A", "tier": "a", "discount": 60})
    assert fields_of(caught) == {"tax_id": ["is required"],
                                 "__all__": ["Discount above 50% needs a manager"]}
    zh = world.user("admin_zh", "admin", locale="zh")
    with pytest.raises(ValidationFailed) as caught:
        world.service.create(zh, "account", {"name": "A", "tier": "a", "discount": 60})
    assert fields_of(caught) == {"tax_id": ["必填"], "__all__": ["折扣超过50%需要经理审批"]}
    record = world.service.create(admin, "account", {"name": "A", "tier": "a", "tax_id": "1",
                                                     "locked_note": "x"})
    with pytest.raises(ValidationFailed) as caught:
        world.service.update(admin, "account", record["id"], {"locked_note": "y"}, 1)
    assert fields_of(caught) == {"locked_note": ["is read-only"]}


def test_optimistic_locking(world):
    admin = world.user("admin1", "admin")
    record = world.service.create(admin, "account", {"name": "A"})
    with pytest.raises(PreconditionRequired):
        world.service.update(admin, "account", record["id"], {"name": "B"})
    updated = world.service.update(admin, "account", record["id"], {"name": "B"}, 1)
    assert updated["version"] == 2
    with pytest.raises(Conflict) as caught:
        world.service.update(admin, "account", record["id"], {"name": "C"}, 1)
    assert caught.value.extra["current_version"] == 2
    assert world.service.get(admin, "account", record["id"])["name"] == "B"
    with pytest.raises(Conflict):
        world.service.delete(admin, "account", record["id"], 1)
    world.service.update(admin, "account", record["id"], {"name": "D", "version": '"2"'})


def test_unique_fields_and_soft_delete_frees_nothing(world):
    admin = world.user("admin1", "admin")
    first = world.service.create(admin, "account", {"name": "A", "code": "AB-123"})
    with pytest.raises(ValidationFailed) as caught:
        world.service.create(admin, "account", {"name": "B", "code": "AB-123"})
    assert list(fields_of(caught)) == ["code"]
    world.service.delete(admin, "account", first["id"], 1)
    with pytest.raises(NotFound):
        world.service.get(admin, "account", first["id"])
    world.service.create(admin, "account", {"name": "B", "code": "AB-123"})  # deleted one freed


def test_permissions_own_all_and_404_for_unreadable(world):
    rep1, rep2 = world.user("rep1", "rep"), world.user("rep2", "rep")
    manager, viewer = world.user("m", "manager"), world.user("v", "viewer")
    mine = world.service.create(rep1, "account", {"name": "Mine"})
    with pytest.raises(NotFound):
        world.service.get(rep2, "account", mine["id"])
    with pytest.raises(NotFound):
        world.service.update(rep2, "account", mine["id"], {"name": "x"}, 1)
    assert world.service.get(manager, "account", mine["id"])["name"] == "Mine"
    with pytest.raises(Forbidden):
        world.service.update(viewer, "account", mine["id"], {"name": "x"}, 1)
    with pytest.raises(Forbidden):
        world.service.create(viewer, "account", {"name": "x"})
    with pytest.raises(NotFound):
        world.service.create(viewer, "deal", {"title": "x"})  # no access at all: absent
    deal = world.service.create(rep1, "deal", {"title": "D", "account": mine["id"]})
    with pytest.raises(Forbidden):
        world.service.delete(rep1, "deal", deal["id"], 1)
    moved = world.service.update(manager, "account", mine["id"], {"owner": rep2.user_id}, 1)
    assert moved["owner"] == rep2.user_id
    with pytest.raises(ValidationFailed) as caught:
        world.service.update(rep2, "account", mine["id"], {"owner": rep1.user_id}, 2)
    assert list(fields_of(caught)) == ["owner"]


def test_lines_rollups_and_computed_fields(world):
    admin = world.user("admin1", "admin")
    account = world.service.create(admin, "account", {"name": "A"})
    pen = world.service.create(admin, "product", {"name": "Pen"})
    deal = world.service.create(admin, "deal", {
        "title": "Big", "account": account["id"], "amount": "100",
        "lines": [{"product": pen["id"], "quantity": 2, "unit_price": "10.00"},
                  {"product": pen["id"], "quantity": 1, "unit_price": "5", "discount": 20}]})
    assert deal["number"].startswith(f"D-{dt.date.today().year}-") and deal["number"].endswith("0001")
    assert [l["total"] for l in deal["lines"]] == [Decimal("20.00"), Decimal("4.00")]
    assert deal["lines_total"] == Decimal("24.00") and deal["max_discount"] == Decimal("20.00")
    assert deal["expected"] == Decimal("50.00") and deal["account_tier"] == "c"
    assert world.service.get(admin, "account", account["id"])["deal_total"] == Decimal("100.00")
    assert world.service.get(admin, "account", account["id"])["open_deals"] == Decimal("1.00")
    first_line = deal["lines"][0]
    changed = world.service.update(admin, "deal", deal["id"], {
        "lines": [{"id": first_line["id"], "quantity": 3}]}, 1)
    assert [l["total"] for l in changed["lines"]] == [Decimal("30.00")]
    assert changed["lines"][0]["id"] == first_line["id"]
    assert changed["lines_total"] == Decimal("30.00")
    with pytest.raises(ValidationFailed) as caught:
        world.service.update(admin, "deal", deal["id"], {
            "lines": [{"id": 99999, "quantity": 1}, {"quantity": 0, "unit_price": "1"}]}, 2)
    assert set(fields_of(caught)) == {"lines[0]", "lines[1].quantity", "lines[1].product"}
    second = world.service.create(admin, "deal", {"title": "Next", "account": account["id"]})
    assert second["number"].endswith("0002")


def test_on_delete_restrict_set_null_and_cascade(world):
    admin = world.user("admin1", "admin")
    parent = world.service.create(admin, "account", {"name": "Parent"})
    child = world.service.create(admin, "account", {"name": "Child", "parent": parent["id"]})
    note = world.service.create(admin, "note", {"body": "n", "account": parent["id"]})
    deal = world.service.create(admin, "deal", {"title": "D", "account": parent["id"]})
    with pytest.raises(Conflict) as caught:
        world.service.delete(admin, "account", parent["id"], parent["version"])
    assert caught.value.extra == {"referencing_entity": "deal", "count": 1}
    world.service.delete(admin, "deal", deal["id"], 1)
    world.service.delete(admin, "account", parent["id"], parent["version"])
    assert world.service.get(admin, "account", child["id"])["parent"] is None
    with pytest.raises(NotFound):
        world.service.get(admin, "note", note["id"])


def test_audit_trail_in_the_same_transaction(world):
    admin = world.user("admin1", "admin")
    rep = world.user("rep1", "rep")
    record = world.service.create(rep, "account", {"name": "A"})
    world.service.update(admin, "account", record["id"], {"name": "B", "secret": "s"}, 1)
    history, cursor = world.service.history(admin, "account", record["id"])
    assert [h["action"] for h in history] == ["update", "create"]
    assert history[0]["changes"] == {"name": ["A", "B"], "secret": [None, "s"],
                                     "vip_label": ["A", "B"]}
    assert history[0]["user"] == admin.user_id
    rep_view, _ = world.service.history(rep, "account", record["id"])
    assert rep_view[0]["changes"] == {"name": ["A", "B"], "vip_label": ["A", "B"]}
    with pytest.raises(ValidationFailed):
        world.service.update(admin, "account", record["id"], {"employees": -5}, 2)
    assert len(world.service.history(admin, "account", record["id"])[0]) == 2
    page, cursor = world.service.history(admin, "account", record["id"], limit=1)
    assert len(page) == 1 and cursor
    rest, end = world.service.history(admin, "account", record["id"], limit=1, cursor=cursor)
    assert rest[0]["action"] == "create" and end is None


def test_creation_entry_shows_the_values_entered_then_even_after_later_changes(world):
    admin = world.user("admin1", "admin")
    rep = world.user("rep1", "rep")
    record = world.service.create(admin, "account", {
        "name": "Acme", "tier": "b", "secret": "s1", "credit_limit": "100", "founded":
        "2001-02-03", "tags": ["vip"], "owner": rep.user_id})
    world.service.update(admin, "account", record["id"], {"name": "Acme 2", "secret": None,
                                                          "tags": ["new", "risky"]}, 1)
    world.service.update(admin, "account", record["id"], {"tier": "c", "employees": 5}, 2)
    world.service.update(admin, "account", record["id"], {"name": "Acme 3"}, 3)
    history, _ = world.service.history(admin, "account", record["id"])
    assert [h["action"] for h in history] == ["update", "update", "update", "create"]
    assert history[-1]["changes"] == {
        "name": [None, "Acme"], "tier": [None, "b"], "secret": [None, "s1"],
        "credit_limit": [None, "100.00"], "founded": [None, "2001-02-03"], "tags": [None, ["vip"]],
        "active": [None, True], "owner": [None, rep.user_id]}
    rep_view, _ = world.service.history(rep, "account", record["id"])
    assert "secret" not in rep_view[-1]["changes"]
    assert rep_view[-1]["changes"]["name"] == [None, "Acme"]


def test_hostile_values_are_bound_not_formatted(world):
    admin = world.user("admin1", "admin")
    evil = "x'); DROP TABLE e_account; --"
    record = world.service.create(admin, "account", {"name": evil[:50], "notes": evil * 3})
    assert world.service.get(admin, "account", record["id"])["name"] == evil[:50]
    with pytest.raises(ValidationFailed):
        world.service.create(admin, "account", {"name": "A", "employees": 10 ** 30})
    with pytest.raises(ValidationFailed):
        world.service.create(admin, "account", {"name": "A", "credit_limit": "1e400"})
    with pytest.raises(ValidationFailed):
        world.service.create(admin, "account", {"name": "A", "founded": "2024-02-30"})
    with pytest.raises(NotFound):
        world.service.get(admin, "account", "1 OR 1=1")


def test_unique_values_on_lines_are_named_by_line(world):
    admin = world.user("admin1", "admin")
    account = world.service.create(admin, "account", {"name": "A"})
    pen = world.service.create(admin, "product", {"name": "Pen"})
    line = {"product": pen["id"], "unit_price": "1", "code": "L-1"}
    with pytest.raises(ValidationFailed) as caught:
        world.service.create(admin, "deal", {"title": "D", "account": account["id"],
                                             "lines": [line, dict(line)]})
    assert list(caught.value.fields) == ["lines[1].code"]
    deal = world.service.create(admin, "deal", {"title": "D", "account": account["id"],
                                                "lines": [line]})
    # replacing a line by a new one with the same code works: the old one goes first
    replaced = world.service.update(admin, "deal", deal["id"], {"lines": [dict(line)]}, 1)
    assert [l["code"] for l in replaced["lines"]] == ["L-1"]


CHAIN_SITE = {
    "entities/region.yaml": """
        entity: region
        fields:
          name: {type: string, required: true}
          total: {type: rollup, of: customer.region, field: total_ordered, agg: sum}
        """,
    "entities/customer.yaml": """
        entity: customer
        fields:
          name: {type: string, required: true}
          region: {type: reference, to: region}
          parent: {type: reference, to: customer, on_delete: set_null}
          total_ordered: {type: rollup, of: order.customer, field: total, agg: sum}
          orders: {type: rollup, of: order.customer, agg: count}
          big_orders: {type: rollup, of: order.customer, agg: count, where: "total > 100.0"}
          grade: {type: string, compute: "total_ordered >= 1000.0 ? 'gold' : 'standard'"}
          group_total: {type: rollup, of: customer.parent, field: tree_total, agg: sum}
          tree_total: {type: money, compute: "total_ordered + group_total"}
        """,
    "entities/order.yaml": """
        entity: order
        fields:
          title: {type: string, required: true}
          customer: {type: reference, to: customer, required: true, on_delete: cascade}
          lines: {type: lines, entity: order_line}
          total: {type: rollup, of: lines, field: amount, agg: sum}
        """,
    "entities/order_line.yaml": """
        entity: order_line
        parent: order
        fields:
          quantity: {type: integer, default: 1}
          price: {type: money, required: true}
          amount: {type: money, compute: "double(quantity) * price"}
        """,
    "entities/club.yaml": """
        entity: club
        fields:
          name: {type: string, required: true}
          members: {type: rollup, of: member.club, agg: count}
          busy: {type: boolean, compute: "members > 0"}
        """,
    "entities/member.yaml": """
        entity: member
        fields:
          name: {type: string, required: true}
          club: {type: reference, to: club, required: true}
        """,
    "workflows/club.yaml": """
        workflow: club_flow
        entity: club
        field: stage
        initial: draft
        states:
          draft: {}
          open: {}
        transitions:
          open:
            from: draft
            to: open
            create:
              - entity: member
                values: {name: "'Founder of ' + name", club: "id"}
            set: {name: "name + ' (' + string(members) + ')'"}
        """,
}


@pytest.fixture
def chain(tmp_path, database_url):
    from conftest import World, write_site
    w = World(database_url, site=write_site(tmp_path / "chain", CHAIN_SITE))
    yield w
    w.engine.dispose()


def test_rollups_of_rollups_follow_lines_and_orders(chain):
    admin, service = chain.user("admin1", "admin"), chain.service
    east = service.create(admin, "region", {"name": "East"})
    acme = service.create(admin, "customer", {"name": "Acme", "region": east["id"]})
    order = service.create(admin, "order", {"title": "O1", "customer": acme["id"], "lines": [
        {"quantity": 2, "price": "300"}, {"price": "50"}]})
    assert order["total"] == Decimal("650.00")
    acme = service.get(admin, "customer", acme["id"])
    assert (acme["total_ordered"], acme["orders"], acme["big_orders"], acme["grade"]) == \
        (Decimal("650.00"), 1, 1, "standard")
    assert service.get(admin, "region", east["id"])["total"] == Decimal("650.00")

    # changing a line: order -> customer (and its computed grade) -> region, in one write
    lines = order["lines"]
    service.update(admin, "order", order["id"], {"lines": [
        {"id": lines[0]["id"], "quantity": 3}, {"id": lines[1]["id"]}, {"price": "200"}]},
        order["version"])
    acme = service.get(admin, "customer", acme["id"])
    assert (acme["total_ordered"], acme["grade"]) == (Decimal("1150.00"), "gold")
    assert service.get(admin, "region", east["id"])["total"] == Decimal("1150.00")

    # a second order, then moving it to another customer, then deleting it
    small = service.create(admin, "order", {"title": "O2", "customer": acme["id"],
                                            "lines": [{"price": "40"}]})
    acme = service.get(admin, "customer", acme["id"])
    assert (acme["total_ordered"], acme["orders"], acme["big_orders"]) == \
        (Decimal("1190.00"), 2, 1)
    other = service.create(admin, "customer", {"name": "Other"})
    moved = service.update(admin, "order", small["id"], {"customer": other["id"]},
                           small["version"])
    assert service.get(admin, "customer", acme["id"])["total_ordered"] == Decimal("1150.00")
    assert service.get(admin, "customer", other["id"])["total_ordered"] == Decimal("40.00")
    service.update(admin, "order", order["id"], {"lines": []},
                   service.get(admin, "order", order["id"])["version"])
    assert service.get(admin, "customer", acme["id"])["total_ordered"] == Decimal("0.00")
    assert service.get(admin, "region", east["id"])["total"] == Decimal("0.00")
    service.delete(admin, "order", moved["id"], moved["version"])
    assert service.get(admin, "customer", other["id"])["total_ordered"] == Decimal("0.00")


def test_a_rollup_over_its_own_entity_climbs_the_tree_and_ends_on_a_loop(chain):
    admin, service = chain.user("admin1", "admin"), chain.service
    top = service.create(admin, "customer", {"name": "Group"})
    mid = service.create(admin, "customer", {"name": "Division", "parent": top["id"]})
    leaf = service.create(admin, "customer", {"name": "Plant", "parent": mid["id"]})
    service.create(admin, "order", {"title": "O", "customer": leaf["id"],
                                    "lines": [{"price": "70"}]})
    assert service.get(admin, "customer", leaf["id"])["tree_total"] == Decimal("70.00")
    assert service.get(admin, "customer", mid["id"])["group_total"] == Decimal("70.00")
    assert service.get(admin, "customer", top["id"])["tree_total"] == Decimal("70.00")
    # a loop in the data (the group made a child of its own plant) ends instead of spinning
    top = service.update(admin, "customer", top["id"], {"parent": leaf["id"]}, top["version"])
    service.create(admin, "order", {"title": "P", "customer": top["id"],
                                    "lines": [{"price": "5"}]})
    assert service.get(admin, "customer", top["id"])["total_ordered"] == Decimal("5.00")


def test_a_transition_returns_the_rollups_of_the_records_it_created(chain):
    admin, service = chain.user("admin1", "admin"), chain.service
    chess = service.create(admin, "club", {"name": "Chess"})
    assert (chess["members"], chess["busy"]) == (0, False)
    opened = service.transition(admin, "club", chess["id"], "open", version=chess["version"])
    # the rollup counts the member the transition created; its `set` and computed field saw it
    assert (opened["stage"], opened["members"], opened["busy"], opened["name"]) == \
        ("open", 1, True, "Chess (1)")
    assert service.get(admin, "club", chess["id"]) == opened
