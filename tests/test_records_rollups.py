"""Rollups are refreshed once per stale record per write, and stay what a full recount gives.

A write notes the rollups it made stale and refreshes them at its end (engine/records/
rollups.py): each stale record gets one UPDATE of its rollups and one recompute of its
computed fields, records whose rollups read others' derived fields come after those, and a
rollup over its own entity climbs a tree level by level. These tests count the statements and
recomputes of single writes, and check the stored values against a recount from scratch
after many random writes.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from decimal import Decimal

import pytest
import sqlalchemy as sa

from conftest import World, write_site
from pgdb import temporary_database
from engine.errors import ValidationFailed
from engine.records.bulk import create_many
from engine.storage.database import write_transaction

SITE = {
    "entities/region.yaml": """
        entity: region
        fields:
          name: {type: string, required: true}
          total: {type: rollup, of: customer.region, field: total_ordered, agg: sum}
          tree_sum: {type: rollup, of: customer.region, field: tree_total, agg: sum}
          customers: {type: rollup, of: customer.region, agg: count}
        """,
    "entities/customer.yaml": """
        entity: customer
        fields:
          name: {type: string, required: true}
          region: {type: reference, to: region, on_delete: set_null}
          parent: {type: reference, to: customer, on_delete: set_null}
          credit_limit: {type: money}
          total_ordered: {type: rollup, of: order.customer, field: total, agg: sum}
          orders: {type: rollup, of: order.customer, agg: count}
          big_orders: {type: rollup, of: order.customer, agg: count, where: "total > 100.0"}
          grade: {type: string, compute: "total_ordered >= 1000.0 ? 'gold' : 'standard'"}
          region_label: {type: string, compute: "region == null ? '-' : region.name + ':' + grade"}
          group_total: {type: rollup, of: customer.parent, field: tree_total, agg: sum}
          tree_total: {type: money, compute: "total_ordered + group_total"}
        validations:
          - rule: "credit_limit == null || total_ordered <= credit_limit"
            message: {en: "Orders exceed the credit limit"}
        """,
    "entities/order.yaml": """
        entity: order
        fields:
          title: {type: string, required: true}
          customer: {type: reference, to: customer, required: true, on_delete: cascade}
          lines: {type: lines, entity: order_line}
          total: {type: rollup, of: lines, field: amount, agg: sum}
          line_count: {type: rollup, of: lines, agg: count}
          big: {type: boolean, compute: "total > 100.0"}
        """,
    "entities/order_line.yaml": """
        entity: order_line
        parent: order
        fields:
          quantity: {type: integer, default: 1}
          price: {type: money, required: true}
          amount: {type: money, compute: "double(quantity) * price"}
        """,
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def w(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("rollups")
    site = write_site(folder / "site", SITE)
    if request.param == "sqlite":
        world = World(f"sqlite:///{folder / 'test.db'}", site=site)
        yield world
        world.engine.dispose()
        return
    with temporary_database(request.getfixturevalue("postgres_server_url")) as url:
        world = World(url, site=site)
        yield world
        world.engine.dispose()


@pytest.fixture
def admin(w):
    return w.user("admin1", "admin")


class Watch:
    """What the service does during a block: the records it recomputes, and the rollup
    UPDATEs it sends per table."""

    def __init__(self, w, monkeypatch):
        self.recomputed: Counter = Counter()
        self.rollup_updates: Counter = Counter()
        recompute = w.service._recompute

        def counted(conn, entity, table, record, computed):
            self.recomputed[(entity.name, record["id"])] += 1
            return recompute(conn, entity, table, record, computed)
        monkeypatch.setattr(w.service, "_recompute", counted)

        def statement(conn, cursor, sql, *_):
            found = re.match(r'\s*UPDATE "?(e_\w+)"? SET .*\(SELECT', sql, re.DOTALL)
            if found:
                self.rollup_updates[found.group(1)] += 1
        self.engine, self.listener = w.engine, statement

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self.listener)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, "before_cursor_execute", self.listener)


def tree(w, admin, name):
    """A region and a chain of customers top <- mid <- leaf in it."""
    service = w.service
    region = service.create(admin, "region", {"name": name})
    top = service.create(admin, "customer", {"name": f"{name} top", "region": region["id"]})
    mid = service.create(admin, "customer", {"name": f"{name} mid", "region": region["id"],
                                             "parent": top["id"]})
    leaf = service.create(admin, "customer", {"name": f"{name} leaf", "region": region["id"],
                                              "parent": mid["id"]})
    return region, top, mid, leaf


def test_one_write_refreshes_each_stale_record_once(w, admin, monkeypatch):
    service = w.service
    region, top, mid, leaf = tree(w, admin, "North")
    with Watch(w, monkeypatch) as watch:
        order = service.create(admin, "order", {"title": "O1", "customer": leaf["id"], "lines": [
            {"quantity": 2, "price": "300"}, {"price": "50"}, {"price": "500"}]})
    # the order, then its customer, then up the tree, then the region: each once
    assert watch.recomputed == {("order", order["id"]): 1, ("customer", leaf["id"]): 1,
                                ("customer", mid["id"]): 1, ("customer", top["id"]): 1}
    assert watch.rollup_updates == {"e_order": 1, "e_customer": 3, "e_region": 1}
    assert (order["total"], order["line_count"], order["big"]) == (Decimal("1150.00"), 3, True)
    got = {c["name"]: (c["total_ordered"], c["group_total"], c["tree_total"], c["grade"],
                       c["region_label"])
           for c in (service.get(admin, "customer", x["id"]) for x in (top, mid, leaf))}
    assert got == {
        "North leaf": (Decimal("1150.00"), Decimal("0.00"), Decimal("1150.00"), "gold",
                       "North:gold"),
        "North mid": (Decimal("0.00"), Decimal("1150.00"), Decimal("1150.00"), "standard",
                      "North:standard"),
        "North top": (Decimal("0.00"), Decimal("1150.00"), Decimal("1150.00"), "standard",
                      "North:standard")}
    region = service.get(admin, "region", region["id"])
    assert (region["total"], region["tree_sum"], region["customers"]) == \
        (Decimal("1150.00"), Decimal("3450.00"), 3)


def test_two_ways_to_one_record_in_one_write_refresh_it_once(w, admin, monkeypatch):
    service = w.service
    region, top, mid, leaf = tree(w, admin, "South")
    order = service.create(admin, "order", {"title": "O", "customer": leaf["id"],
                                            "lines": [{"price": "80"}]})
    # moving the order from the leaf to its grandparent: both lose or gain it, the middle
    # customer and the region are reached from both, and each is refreshed once
    with Watch(w, monkeypatch) as watch:
        service.update(admin, "order", order["id"], {"customer": top["id"]}, order["version"])
    assert watch.recomputed[("customer", top["id"])] <= 2  # from the order, then from mid
    assert watch.recomputed[("customer", leaf["id"])] == 1
    assert watch.recomputed[("customer", mid["id"])] == 1
    assert watch.rollup_updates["e_region"] == 1
    assert [service.get(admin, "customer", c["id"])["tree_total"] for c in (top, mid, leaf)] \
        == [Decimal("80.00"), Decimal("0.00"), Decimal("0.00")]
    region = service.get(admin, "region", region["id"])
    assert (region["total"], region["tree_sum"]) == (Decimal("80.00"), Decimal("80.00"))


def test_refreshing_rollups_changes_no_version_and_writes_no_audit_entry(w, admin):
    service = w.service
    region, top, mid, leaf = tree(w, admin, "East")
    service.create(admin, "order", {"title": "O", "customer": leaf["id"],
                                    "lines": [{"price": "5"}]})
    for record in (top, mid, leaf):
        assert service.get(admin, "customer", record["id"])["version"] == record["version"]
        history, _ = service.history(admin, "customer", record["id"])
        assert [h["action"] for h in history] == ["create"]
    assert service.get(admin, "region", region["id"])["version"] == region["version"]


def test_a_validation_reads_the_refreshed_rollup(w, admin):
    service = w.service
    customer = service.create(admin, "customer", {"name": "Limited"})
    service.create(admin, "order", {"title": "O", "customer": customer["id"],
                                    "lines": [{"quantity": 3, "price": "200"}]})
    customer = service.get(admin, "customer", customer["id"])
    with pytest.raises(ValidationFailed) as caught:
        service.update(admin, "customer", customer["id"], {"credit_limit": "500"},
                       customer["version"])
    assert caught.value.fields == {"__all__": ["Orders exceed the credit limit"]}
    changed = service.update(admin, "customer", customer["id"], {"credit_limit": "600"},
                             customer["version"])
    assert (changed["credit_limit"], changed["total_ordered"]) == \
        (Decimal("600.00"), Decimal("600.00"))


def test_deleting_refreshes_what_the_deleted_records_fed(w, admin):
    service = w.service
    region, top, mid, leaf = tree(w, admin, "West")
    for customer, price in ((leaf, "10"), (mid, "20"), (top, "40")):
        service.create(admin, "order", {"title": "O", "customer": customer["id"],
                                        "lines": [{"price": price}]})
    assert service.get(admin, "region", region["id"])["tree_sum"] == Decimal("70.00") + \
        Decimal("30.00") + Decimal("10.00")
    # the middle customer goes with its order (cascade); the leaf's parent is set to null
    mid = service.get(admin, "customer", mid["id"])
    service.delete(admin, "customer", mid["id"], mid["version"])
    leaf = service.get(admin, "customer", leaf["id"])
    assert (leaf["parent"], leaf["tree_total"]) == (None, Decimal("10.00"))
    top = service.get(admin, "customer", top["id"])
    assert (top["group_total"], top["tree_total"]) == (Decimal("0.00"), Decimal("40.00"))
    region = service.get(admin, "region", region["id"])
    assert (region["total"], region["tree_sum"], region["customers"]) == \
        (Decimal("50.00"), Decimal("50.00"), 2)


def test_a_bulk_create_refreshes_each_customer_once(w, admin, monkeypatch):
    service = w.service
    region = service.create(admin, "region", {"name": "Bulk"})
    a, b = (service.create(admin, "customer", {"name": n, "region": region["id"]})
            for n in ("Bulk A", "Bulk B"))
    rows = [{"title": f"B{i}", "customer": (a, b)[i % 2]["id"],
             "lines": [{"price": str(10 * (i + 1))}]} for i in range(6)]
    with Watch(w, monkeypatch) as watch, write_transaction(w.engine) as conn:
        outcomes = create_many(service, admin, "order", rows, conn)
    assert [o.error for o in outcomes] == [None] * 6
    assert {key: n for key, n in watch.recomputed.items() if key[0] == "customer"} == {
        ("customer", a["id"]): 1, ("customer", b["id"]): 1}
    # one statement per table: the six orders together, then both customers, then the region
    assert watch.rollup_updates == {"e_order": 1, "e_customer": 1, "e_region": 1}
    assert [service.get(admin, "customer", c["id"])["total_ordered"] for c in (a, b)] == \
        [Decimal("90.00"), Decimal("120.00")]
    assert service.get(admin, "region", region["id"])["total"] == Decimal("210.00")


def test_a_tree_is_climbed_level_by_level(w, admin, monkeypatch):
    """A rollup over its own entity: a write reaching a tree at two levels refreshes the
    upper levels once per level it was reached from, and ends right."""
    service = w.service
    region, top, mid, leaf = tree(w, admin, "Levels")
    rows = [{"title": "T1", "customer": leaf["id"], "lines": [{"price": "7"}]},
            {"title": "T2", "customer": mid["id"], "lines": [{"price": "11"}]}]
    with Watch(w, monkeypatch) as watch, write_transaction(w.engine) as conn:
        create_many(service, admin, "order", rows, conn)
    assert watch.recomputed[("customer", leaf["id"])] == 1
    assert watch.recomputed[("customer", mid["id"])] == 2  # with its order, then its child's
    assert watch.recomputed[("customer", top["id"])] == 2
    assert watch.rollup_updates["e_region"] == 1  # after the whole tree
    assert [service.get(admin, "customer", c["id"])["tree_total"] for c in (top, mid, leaf)] \
        == [Decimal("18.00"), Decimal("18.00"), Decimal("7.00")]
    assert service.get(admin, "region", region["id"])["tree_sum"] == Decimal("43.00")


def recount(w) -> dict:
    """Every stored rollup and computed value as a recount from the live rows gives it."""
    with w.engine.connect() as conn:
        def rows(name):
            table = w.service.schema.entities[name]
            return [dict(r) for r in conn.execute(sa.select(table).where(
                table.c.deleted_at.is_(None))).mappings()]
        regions, customers, orders, lines = (rows(n) for n in
                                             ("region", "customer", "order", "order_line"))
    expected = {}
    totals = {o["id"]: sum((l["amount"] for l in lines if l["parent_id"] == o["id"]),
                           Decimal(0)) for o in orders}
    counts = Counter(l["parent_id"] for l in lines)
    for o in orders:
        expected[("order", o["id"])] = (totals[o["id"]], counts[o["id"]],
                                        totals[o["id"]] > 100)
    own = {c["id"]: [totals[o["id"]] for o in orders if o["customer"] == c["id"]]
           for c in customers}
    children = {c["id"]: [k["id"] for k in customers if k["parent"] == c["id"]]
                for c in customers}

    def tree_total(cid, seen=()):
        return sum(own[cid], Decimal(0)) + sum(
            (tree_total(k, seen + (cid,)) for k in children[cid]), Decimal(0))
    for c in customers:
        total = sum(own[c["id"]], Decimal(0))
        grade = "gold" if total >= 1000 else "standard"
        region = next((r for r in regions if r["id"] == c["region"]), None)
        expected[("customer", c["id"])] = (
            total, len(own[c["id"]]), sum(1 for t in own[c["id"]] if t > 100), grade,
            "-" if region is None else f"{region['name']}:{grade}",
            tree_total(c["id"]) - total, tree_total(c["id"]))
    for r in regions:
        members = [c for c in customers if c["region"] == r["id"]]
        expected[("region", r["id"])] = (
            sum((sum(own[c["id"]], Decimal(0)) for c in members), Decimal(0)),
            sum((tree_total(c["id"]) for c in members), Decimal(0)), len(members))
    stored = {}
    for o in orders:
        stored[("order", o["id"])] = (o["total"], o["line_count"], o["big"])
    for c in customers:
        stored[("customer", c["id"])] = (c["total_ordered"], c["orders"], c["big_orders"],
                                         c["grade"], c["region_label"], c["group_total"],
                                         c["tree_total"])
    for r in regions:
        stored[("region", r["id"])] = (r["total"], r["tree_sum"], r["customers"])
    return {"expected": expected, "stored": stored}


def test_random_writes_leave_every_rollup_as_a_recount_gives_it(w, admin):
    service, rnd = w.service, random.Random(20261206)
    regions = [service.create(admin, "region", {"name": f"R{i}"})["id"] for i in range(2)]
    customers = []
    for i in range(6):  # a forest: a parent always comes before its children
        parent = rnd.choice([None, *customers]) if customers else None
        customers.append(service.create(admin, "customer", {
            "name": f"C{i}", "region": rnd.choice(regions), "parent": parent})["id"])
    orders: list[int] = []

    def current(entity, record_id):
        return service.get(admin, entity, record_id)
    for step in range(40):
        action = rnd.choice(["create", "create", "lines", "move", "delete", "region"])
        if action == "create" or not orders:
            orders.append(service.create(admin, "order", {
                "title": f"O{step}", "customer": rnd.choice(customers),
                "lines": [{"quantity": rnd.randint(1, 3), "price": str(rnd.randint(1, 400))}
                          for _ in range(rnd.randint(0, 3))]})["id"])
        elif action == "lines":
            order = current("order", rnd.choice(orders))
            kept = [{"id": l["id"], "quantity": rnd.randint(1, 4)}
                    for l in order["lines"] if rnd.random() < 0.6]
            service.update(admin, "order", order["id"],
                           {"lines": kept + [{"price": str(rnd.randint(1, 900))}]},
                           order["version"])
        elif action == "move":
            order = current("order", rnd.choice(orders))
            service.update(admin, "order", order["id"], {"customer": rnd.choice(customers)},
                           order["version"])
        elif action == "delete":
            order = current("order", orders.pop(rnd.randrange(len(orders))))
            service.delete(admin, "order", order["id"], order["version"])
        else:
            customer = current("customer", rnd.choice(customers))
            service.update(admin, "customer", customer["id"],
                           {"region": rnd.choice([None, *regions])}, customer["version"])
    result = recount(w)
    mine = {k for k in result["expected"]
            if (k[0] == "customer" and k[1] in customers) or (k[0] == "region" and
                                                             k[1] in regions)
            or (k[0] == "order" and k[1] in orders)}
    assert len(mine) == len(customers) + len(regions) + len(orders)
    assert {k: result["stored"][k] for k in mine} == {k: result["expected"][k] for k in mine}
