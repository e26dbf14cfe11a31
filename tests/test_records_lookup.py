"""Lookups (price resolution): the same price on every path — service, API, import, lines,
the form's preview — chosen by specificity, order, validity, `where`, and read as the system."""

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from conftest import BARE_ROOT, FIXTURES, World
from engine.errors import NotFound, ValidationFailed
from engine.records.bulk import create_many
from engine.records.transfer import import_rows
from engine.storage.database import write_transaction
from test_web_ui import csrf_of, html, post, sign_in
from web import create_app

PRICING_SITE = FIXTURES / "sites" / "pricing"
TODAY = dt.date.today()


@pytest.fixture
def shop(database_url):
    """The pricing site with two products, a gold customer and a price list."""
    world = World(database_url, site=PRICING_SITE, root=BARE_ROOT)
    admin = world.user("admin1", "admin")
    world.rep = world.user("rep1", "rep")
    world.admin = admin
    create = world.service.create
    world.pen = create(admin, "product", {"name": "Pen"})["id"]
    world.ink = create(admin, "product", {"name": "Ink"})["id"]
    world.gold = create(admin, "customer", {"name": "Gold Ltd", "tier": "gold"})["id"]
    world.silver = create(admin, "customer", {"name": "Silver Ltd", "tier": "silver"})["id"]
    entries = [
        {"product": world.pen, "price": "10"},                                   # the list price
        {"product": world.pen, "channel": "web", "price": "9"},
        {"product": world.pen, "channel": "web", "region": "north", "price": "8.50"},
        {"product": world.pen, "tier": "gold", "price": "8", "priority": 1},
        {"product": world.pen, "tier": "gold", "price": "7.50", "priority": 5},
        {"product": world.pen, "tier": "gold", "price": "7", "priority": 5,
         "active": False},                                                       # `where`
        {"product": world.pen, "channel": "wholesale", "price": "6",
         "valid_from": "2024-01-01", "valid_to": "2024-06-30"},
        {"product": world.pen, "channel": "wholesale", "price": "5.50",
         "valid_from": "2024-07-01"},
        {"channel": "wholesale", "price": "4", "tier": "silver"},                # any product
    ]
    world.entries = [create(admin, "price_list_entry", e)["id"] for e in entries]
    yield world
    world.engine.dispose()


def sale(world, caller=None, **fields):
    return world.service.create(caller or world.rep, "sale", {"name": "s", **fields})


def test_the_most_specific_valid_active_candidate_wins(shop):
    assert sale(shop, product=shop.pen)["unit_price"] == Decimal("10.00")
    assert sale(shop, product=shop.pen, channel="web")["unit_price"] == Decimal("9.00")
    assert sale(shop, product=shop.pen, channel="web", region="north")["unit_price"] == \
        Decimal("8.50")
    # a region no entry names: the web price (the empty region is a wildcard)
    assert sale(shop, product=shop.pen, channel="web", region="south")["unit_price"] == \
        Decimal("9.00")
    # the tier comes from a computed field evaluated before the lookup; of the two gold
    # prices the higher priority wins, and the inactive one never counts
    gold = sale(shop, product=shop.pen, customer=shop.gold, quantity=3)
    assert (gold["customer_tier"], gold["unit_price"]) == ("gold", Decimal("7.50"))
    assert gold["amount"] == Decimal("22.50")  # computed after the lookup, same write
    # validity is inclusive at both ends; an empty end is open; `on` is the sale date
    for day, price in (("2024-06-30", "6.00"), ("2024-07-01", "5.50"), ("2031-01-01", "5.50"),
                       ("2023-12-31", "10.00")):
        found = sale(shop, product=shop.pen, channel="wholesale", sale_date=day)
        assert found["unit_price"] == Decimal(price), day


def test_ties_go_to_the_highest_id_and_empty_values_only_match_empty_fields(shop):
    admin = shop.admin
    newer = shop.service.create(admin, "price_list_entry",
                                {"product": shop.pen, "tier": "gold", "price": "7.40",
                                 "priority": 5})
    assert sale(shop, product=shop.pen, customer=shop.gold)["unit_price"] == Decimal("7.40")
    shop.service.delete(admin, "price_list_entry", newer["id"], newer["version"])
    assert sale(shop, product=shop.pen, customer=shop.gold)["unit_price"] == Decimal("7.50")
    # no product entry for ink: the silver wholesale price for any product applies, but not
    # to a sale without a customer (an empty tier matches only entries with an empty tier)
    assert sale(shop, product=shop.ink, channel="wholesale",
                customer=shop.silver)["unit_price"] == Decimal("4.00")
    with pytest.raises(ValidationFailed) as refused:
        sale(shop, product=shop.ink, channel="wholesale")
    assert refused.value.fields == {"unit_price": ["is required"]}


def test_an_entered_value_is_kept_and_updates_resolve_only_empty_changed_records(shop):
    entered = sale(shop, product=shop.pen, unit_price="3")
    assert entered["unit_price"] == Decimal("3.00")
    update = shop.service.update
    # the product changes, the entered price stays
    changed = update(shop.rep, "sale", entered["id"], {"channel": "web"}, entered["version"])
    assert changed["unit_price"] == Decimal("3.00")
    # emptied along with a change of what the lookup reads: looked up again
    again = update(shop.rep, "sale", entered["id"], {"unit_price": None, "region": "north"},
                   changed["version"])
    assert again["unit_price"] == Decimal("8.50")
    # a change that leaves the field filled does not look it up again
    kept = update(shop.rep, "sale", entered["id"], {"region": None}, again["version"])
    assert kept["unit_price"] == Decimal("8.50")


def test_the_caller_needs_no_access_to_the_price_list(shop):
    with pytest.raises(NotFound):
        shop.service.get(shop.rep, "price_list_entry", shop.entries[0])
    assert sale(shop, product=shop.pen)["unit_price"] == Decimal("10.00")


def test_lines_read_their_parent_and_a_default_is_the_fallback(shop):
    rep, service = shop.rep, shop.service
    quote = service.create(rep, "quote", {
        "name": "Q", "channel": "wholesale", "quote_date": "2024-03-01",
        "lines": [{"product": shop.pen, "quantity": 2}, {"product": shop.pen,
                                                         "unit_price": "1"}]})
    prices = [(line["unit_price"], line["amount"]) for line in quote["lines"]]
    assert prices == [(Decimal("6.00"), Decimal("12.00")), (Decimal("1.00"), Decimal("1.00"))]
    assert quote["total"] == Decimal("13.00")
    # a new line on update reads the parent as it is after the update
    lines = [{"id": quote["lines"][0]["id"]}, {"id": quote["lines"][1]["id"]},
             {"product": shop.pen}]
    changed = service.update(rep, "quote", quote["id"], {"quote_date": "2024-08-01",
                                                         "lines": lines}, quote["version"])
    assert [line["unit_price"] for line in changed["lines"]] == \
        [Decimal("6.00"), Decimal("1.00"), Decimal("5.50")]
    # a line left without a price that no entry gives: named, nothing written
    with pytest.raises(ValidationFailed) as refused:
        service.create(rep, "quote", {"name": "Q2", "channel": "web",
                                      "lines": [{"product": shop.ink}]})
    assert refused.value.fields == {"lines[0].unit_price": ["is required"]}
    # without `where`, the inactive gold price counts: priority 5 twice, the higher id wins;
    # `floor_price` falls back to its default when no candidate matches
    offer = service.create(rep, "offer", {"name": "o", "product": shop.pen})
    assert (offer["price"], offer["floor_price"]) == (Decimal("7.00"), Decimal("1.25"))
    service.create(shop.admin, "price_list_entry", {"product": shop.ink, "channel": "retail",
                                                    "tier": "silver", "price": "3"})
    offer = service.create(rep, "offer", {"name": "o", "product": shop.ink,
                                          "channel": "wholesale"})
    assert (offer["price"], offer["floor_price"]) == (Decimal("4.00"), Decimal("3.00"))


def _price_queries(world):
    seen = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if "FROM e_price_list_entry" in statement:
            seen.append(statement)
    sa.event.listen(world.engine, "before_cursor_execute", count)
    return seen


@pytest.mark.parametrize("entity", ["sale", "offer"])  # the full path, the fast path
def test_import_gives_what_one_by_one_gives_asking_once_per_distinct_key(shop, entity):
    rows = [{"name": f"r{i}", "product": shop.pen, "channel": ["web", "retail", ""][i % 3]}
            for i in range(150)]
    rows += [{"name": "entered", "product": shop.pen, "channel": "web",
              ("unit_price" if entity == "sale" else "price"): "2"},
             {"name": "no price", "product": shop.ink}]
    price = "unit_price" if entity == "sale" else "price"
    expected = []
    for row in rows:
        try:
            expected.append(shop.service.create(shop.rep, entity, row)[price])
        except ValidationFailed as exc:
            expected.append(exc.fields)
    queries = _price_queries(shop)
    with write_transaction(shop.engine) as conn:
        outcomes = create_many(shop.service, shop.rep, entity, rows, conn)
    got = [o.error.fields if o.error else shop.service.get(shop.rep, entity, o.record_id)[price]
           for o in outcomes]
    assert got == expected
    assert expected[-1] == {price: ["is required"]}
    # an offer does not match on region: the two web prices tie, the higher id wins
    assert expected[:3] == ([Decimal("9.00"), Decimal("10.00"), Decimal("10.00")]
                            if entity == "sale" else
                            [Decimal("8.50"), Decimal("7.00"), Decimal("7.00")])
    # the batch's candidates are read once per looked-up field (those for any product, those
    # for the products of the rows), whatever the number of rows and keys
    assert len(queries) == (4 if entity == "offer" else 2)


def test_csv_import_fills_prices(shop):
    header = ["name", "product", "channel", "sale_date"]
    result = import_rows(shop.service, shop.admin, "sale", header, [
        (2, ["a", str(shop.pen), "wholesale", "2024-05-05"]),
        (3, ["b", str(shop.pen), "wholesale", ""]),
        (4, ["c", str(shop.ink), "", ""])])
    assert result.created == 2
    assert [(r.line, r.reasons) for r in result.rejected] == [(4, ["unit_price: is required"])]
    page = shop.service.list(shop.admin, "sale")
    assert sorted(r["unit_price"] for r in page.data) == [Decimal("5.50"), Decimal("6.00")]


@pytest.fixture
def ui(shop, monkeypatch):
    monkeypatch.setenv("CRM_SECRET_KEY", "test-secret-key")
    shop.users.create("rep", "pw-rep", ["rep"])
    client = create_app(shop.registry, shop.engine).test_client()
    client.world = shop
    return client


def test_api_and_form_preview_give_the_price_saving_would_store(ui):
    shop = ui.world
    response = ui.post("/api/v1/auth/token", json={"username": "rep", "password": "pw-rep"})
    headers = {"Authorization": f"Bearer {response.json['token']}"}
    created = ui.post("/api/v1/sale", headers=headers,
                      json={"name": "api", "product": shop.pen, "channel": "web"})
    assert created.status_code == 201, created.json
    assert created.json["data"]["unit_price"] == "9.00"
    refused = ui.post("/api/v1/sale", headers=headers, json={"name": "api", "product": shop.ink})
    assert refused.status_code == 422
    assert refused.json["error"]["fields"] == {"unit_price": ["is required"]}

    sign_in(ui, "rep")
    page = html(ui.get("/sale/new"))
    assert 'data-state-url="/sale/form-state"' in page
    answer = post(ui, "/sale/form-state", {"name": "x", "product": str(shop.pen),
                                           "channel": "web", "region": "north"}, "/sale/new")
    assert answer.json["lookups"] == {"unit_price": "8.50"}
    assert answer.json["fields"]["unit_price"]["required"] is False  # may be left empty
    answer = post(ui, "/sale/form-state", {"name": "x", "product": str(shop.ink)}, "/sale/new")
    assert answer.json["lookups"] == {}
    assert answer.json["fields"]["unit_price"]["required"] is True
    # an entered price is no preview
    answer = post(ui, "/sale/form-state", {"name": "x", "product": str(shop.pen),
                                           "unit_price": "4"}, "/sale/new")
    assert answer.json["lookups"] == {}
    saved = post(ui, "/sale/new", {"name": "x", "product": str(shop.pen), "channel": "web",
                                   "region": "north"}, "/sale/new")
    assert saved.status_code == 302, html(saved)
    record_id = int(saved.headers["Location"].rsplit("/", 1)[1])
    assert shop.service.get(shop.admin, "sale", record_id)["unit_price"] == Decimal("8.50")

    # a quote's lines: the rows are named as the form names them, the parent's values count
    page = html(ui.get("/quote/new"))
    assert "data-lines-lookups" in page
    assert 'name="lines[0].unit_price"' in page and \
        'name="lines[0].unit_price" required' not in page
    form = {"name": "Q", "channel": "wholesale", "quote_date": "2024-03-01", "_lines": "lines",
            "lines[0].id": "", "lines[0].product": str(shop.ink), "lines[0].quantity": "1",
            "lines[3].id": "", "lines[3].product": str(shop.pen), "lines[3].quantity": "1",
            "lines[5].id": "", "lines[5].product": str(shop.pen), "lines[5].unit_price": "2"}
    answer = post(ui, "/quote/form-state", form, "/quote/new")
    # ink: the wholesale price for any product; row 5 has its price entered
    assert answer.json["lookups"] == {"lines[0].unit_price": "4.00",
                                      "lines[3].unit_price": "6.00"}
