"""The foreign trade and electronics pack: one test per requirement of seed 004 section 4
(外贸 and 电子/电器高科技) and of issue 10.

Every test works through the record service (as the API and the UI do) on a site made with the
pack, its sample data loaded, the market exchange rates imported (`crm rates import`) and the
sample mailbox imported (`crm mail import`), on SQLite and on PostgreSQL.
docs/packs/foreign_trade.md maps each requirement to what meets it and names these tests.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from packworld import (REPO, assert_demo_pages_render, assert_reports_and_dashboards_run, create, fire,
                       get, raises, seed_counts, today, update, world_fixture)

PACK = REPO / "industry_packs" / "foreign_trade"
MBOX = PACK / "seed" / "mailbox" / "sample.mbox"
PDF = {"name": "quote.pdf", "content_base64": base64.b64encode(b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n").decode()}

w = world_fixture("foreign_trade")


@pytest.fixture(scope="module", autouse=True)
def site_data(w):
    """The market rates and the sample mailbox, which the world loaded like `crm demo`."""
    from engine.records.currency import ExchangeRates
    w.rates = ExchangeRates(w.registry, w.engine, w.service.schema)
    return w


def _query(search=None, **filters):
    from engine.records.listing import ListQuery
    return ListQuery(filters=[(k, k, "in", str(v)) for k, v in filters.items()], limit=500, q=search)


def find(w, entity, role="admin", search=None, **filters):
    return w.service.list(w.as_(role), entity, _query(search, **filters)).data


def one(w, entity, **filters):
    found = find(w, entity, **filters)
    assert len(found) == 1, (entity, filters, len(found))
    return found[0]


def day(offset: int) -> str:
    """A date `offset` days from today, as the API takes it."""
    return str(today() + dt.timedelta(days=offset))


def on(offset: int) -> dt.date:
    """A date `offset` days from today, as the record service gives it back."""
    return today() + dt.timedelta(days=offset)


def num(value) -> float | None:
    return None if value is None else float(value)


def product(w, code):
    return one(w, "product", code=code)


def customer(w, name):
    return find(w, "customer", search=name)[0]


def costing(w, currency: str) -> float:
    """The costing rate of `currency` today (the latest one, open-ended)."""
    rates = [r for r in find(w, "costing_rate", currency=currency) if r["valid_to"] is None]
    return float(rates[0]["rate"])


_codes = iter(range(1, 10 ** 6))


def a_product(w, name, **values):
    values.setdefault("code", f"TEST-{next(_codes):05d}")
    return create(w, "sales_manager", "product", name=name, **values)


CREDIT = ("credit_limit", "credit_rating", "payment_terms")


def a_customer(w, name, role="sales_manager", **values):
    """A customer owned by the sales rep; its credit terms are set by finance (sales people
    read them only)."""
    values.setdefault("country", "US")
    credit = {k: values.pop(k) for k in CREDIT if k in values}
    if role != "sales_rep":
        values["owner"] = w.uid("sales_rep")
    record = create(w, role, "customer", name=name, **values)
    return update(w, "finance", "customer", record, **credit) if credit else record


def run_on(w, automation_name, entity, record):
    """Run one automation on one record now, as its schedule would."""
    from engine.records.access import SYSTEM
    from engine.storage.database import write_transaction
    automation = w.registry.automations[automation_name]
    with write_transaction(w.engine) as conn:
        current = w.service.get(SYSTEM, entity, record["id"], conn=conn)
        return w.service.automations.run(conn, SYSTEM, automation, w.registry.entities[entity], current)


class Told:
    """The notifications a role gets from here on (seeding notified people too)."""

    def __init__(self, w, role):
        self.w, self.role, self.before = w, role, len(w.notified(role))

    def new(self) -> list[str]:
        return self.w.notified(self.role)[:len(self.w.notified(self.role)) - self.before]


def activities_of(w, **filters):
    return find(w, "activity", **filters)


# ---------------------------------------------------------------- the pack and its data

def test_pack_validates():
    result = subprocess.run([sys.executable, str(REPO / "cli.py"), "validate", "--pack", "foreign_trade"],
                            capture_output=True, text=True, cwd=REPO, timeout=120, env=dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: ")


def test_seed_loads_all_sample_data_without_a_rejected_row(w):
    expected = seed_counts(REPO / "metadata" / "seed", PACK / "seed")
    loaded = dict(line.split(": ") for line in w.seed_lines)
    assert loaded == {k: f"{n} records" for k, n in expected.items()}
    pack = seed_counts(PACK / "seed")
    assert pack["order"] >= 120 and pack["supplier_quote"] >= 40 and pack["serial_number"] >= 40
    # the balances the credit control uses agree with the orders and payments
    for c in find(w, "customer", search="GmbH"):
        open_orders = [o for o in find(w, "order", customer=c["id"])
                       if o["state"] in ("confirmed", "shipped", "delivered")]
        assert num(c["outstanding"] or 0) == pytest.approx(sum(num(o["balance_cny"]) for o in open_orders), abs=0.05)
    # every seeded order that left the warehouse has the serial numbers of its units
    shipped = [o for o in find(w, "order") if o["state"] in ("shipped", "delivered", "completed")]
    assert shipped and all(o["serials_missing"] == 0 for o in shipped)
    # what the demo loads besides: market rates and the sample mailbox
    rates_line, mail_line = w.seed_file_lines
    assert rates_line.endswith("exchange_rates.csv: 104 exchange rates")
    assert mail_line.endswith("sample.mbox: 34 new, 0 already stored, 0 failed")


def test_every_report_and_dashboard_of_the_pack_runs_on_the_sample_data(w):
    assert_reports_and_dashboards_run(w)


# ---------------------------------------------------------------- suppliers and RFQs (供应商、询价)

def _rfq_with_three_quotes(w, customer_record, target=280.0):
    item = a_product(w, "测试工矿灯 200W / Test high-bay 200W", purchase_cost=300, hs_code="9405119000")
    suppliers = [create(w, "purchaser", "supplier", name=f"测试供应商{next(_codes)}", kind="factory", rating="a",
                        email=f"s{next(_codes)}@test-supplier.example") for _ in range(3)]
    rfq = create(w, "purchaser", "rfq", subject="测试询价 / Test RFQ", product=item["id"], quantity=100,
                 target_price=target, customer=customer_record["id"])
    rfq = fire(w, "purchaser", "rfq", rfq, "send")
    w.told_purchaser = Told(w, "purchaser")
    quotes = [create(w, "purchaser", "supplier_quote", rfq=rfq["id"], supplier=s["id"], unit_price=price,
                     moq=moq, lead_time_days=lead)
              for s, price, moq, lead in zip(suppliers, (290.0, 276.0, 301.0), (100, 200, 50), (30, 35, 20))]
    return item, suppliers, rfq, quotes


def test_suppliers_in_one_place_with_rfqs_sent_to_several_suppliers_and_quotes_compared(w):
    buyer = a_customer(w, "Test Supply Co. RFQ", tier="b")
    item, suppliers, rfq, quotes = _rfq_with_three_quotes(w, buyer)
    assert quotes[0]["product"] == item["id"]  # the RFQ's product, by default
    assert len(w.told_purchaser.new()) == 3 and "quoted for an RFQ" in w.told_purchaser.new()[0]
    # the supplier's own quotation document is kept with the quote (a PDF, a scan or a sheet)
    filed = update(w, "purchaser", "supplier_quote", quotes[1], quote_file=PDF)
    assert (filed["quote_file"]["name"], filed["quote_file"]["content_type"]) == ("quote.pdf", "application/pdf")
    with raises("ValidationFailed"):
        update(w, "purchaser", "supplier_quote", quotes[0], quote_file={"name": "quote.pdf",
                                                                         "content_base64": base64.b64encode(b"just text").decode()})
    rfq = get(w, "rfq", rfq)
    assert (rfq["quotes_count"], num(rfq["best_price"]), num(rfq["highest_price"]), rfq["shortest_lead_time"]) == \
        (3, 276.0, 301.0, 20)
    assert [num(q["above_target"]) for q in quotes] == [3.6, -1.4, 7.5]
    # one quote per supplier and RFQ, for the RFQ's product, never from a blocked supplier
    with raises("ValidationFailed"):
        create(w, "purchaser", "supplier_quote", rfq=rfq["id"], supplier=suppliers[0]["id"], unit_price=1)
    other = a_product(w, "测试别的产品")
    with raises("ValidationFailed"):
        create(w, "purchaser", "supplier_quote", rfq=rfq["id"], supplier=suppliers[1]["id"], product=other["id"],
               unit_price=1)
    blocked = create(w, "purchaser", "supplier", name="测试停用供应商", rating="blocked")
    with raises("ValidationFailed"):
        create(w, "purchaser", "supplier_quote", rfq=rfq["id"], supplier=blocked["id"], unit_price=1)
    # the quotes side by side
    rows = [r for r in w.report("rfq_quote_comparison")["rows"] if r["rfq"] == rfq["id"]]
    assert sorted((r["supplier"], num(r["price"]), r["lead_time"], r["moq"]) for r in rows) == sorted(
        (s["id"], p, lead, moq) for s, p, lead, moq in zip(suppliers, (290.0, 276.0, 301.0), (30, 35, 20), (100, 200, 50)))
    # the purchaser awards one (a sales rep may not); one award per RFQ
    with raises("Forbidden"):
        fire(w, "sales_rep", "supplier_quote", quotes[1], "award")
    with raises("ValidationFailed"):  # the RFQ is not closed before a quote is awarded
        fire(w, "purchaser", "rfq", rfq, "award")
    awarded = fire(w, "purchaser", "supplier_quote", quotes[1], "award")
    assert awarded["state"] == "awarded" and awarded["awarded_by"] == w.uid("purchaser")
    with raises("ValidationFailed"):
        fire(w, "purchaser", "supplier_quote", quotes[0], "award")
    fire(w, "purchaser", "supplier_quote", quotes[0], "decline")
    assert fire(w, "purchaser", "rfq", rfq, "award")["state"] == "awarded"
    assert (get(w, "rfq", rfq)["awarded_count"], num(get(w, "rfq", rfq)["awarded_price"])) == (1, 276.0)
    winner = get(w, "supplier", suppliers[1])
    assert (winner["quotes_count"], winner["awarded_count"]) == (1, 1)
    performance = {r["supplier"]: r for r in w.report("supplier_performance")["rows"]}
    assert performance[suppliers[1]["id"]]["win_rate"] == 100.0
    assert performance[suppliers[0]["id"]]["awarded"] == 0


def test_awarded_supplier_price_carried_into_the_quotation_with_a_margin(w):
    buyer = a_customer(w, "Test Importer Margin LLC", tier="b")  # tier B: 15 % margin
    item, _, rfq, quotes = _rfq_with_three_quotes(w, buyer)
    assert (num(rfq["target_margin"]), num(rfq["fx_rate"])) == (15.0, costing(w, "USD"))
    fire(w, "purchaser", "supplier_quote", quotes[1], "award")
    fx = costing(w, "USD")
    price = one(w, "sales_price", product=item["id"], customer=buyer["id"])
    assert (price["source"], price["currency"], num(price["cost_price"])) == ("rfq_award", "USD", 276.0)
    assert num(price["price"]) == round(276.0 * 1.15 / fx, 2)
    assert num(price["margin"]) == pytest.approx(13.0, abs=0.1)  # 15 % on cost is 13 % of the price
    # the customer's quotation takes the price, the cost and the margin by itself
    quote = create(w, "sales_rep", "quote", customer=buyer["id"], lines=[{"product": item["id"], "quantity": 100}])
    line = quote["lines"][0]
    assert (quote["currency"], num(line["unit_price"]), num(line["cost_price"])) == ("USD", num(price["price"]), 276.0)
    assert num(line["margin"]) == pytest.approx(13.0, abs=0.1) and num(quote["min_margin"]) == num(line["margin"])
    assert num(quote["total_cny"]) == pytest.approx(num(quote["total"]) * fx, abs=0.01)
    assert fire(w, "sales_rep", "quote", quote, "confirm")["state"] == "approved"  # margin above 8 %
    # another customer has no price of its own for the product, nor a general one yet
    other = a_customer(w, "Test Other Buyer Ltd.", tier="c")
    with raises("ValidationFailed") as refused:
        create(w, "sales_rep", "quote", customer=other["id"], lines=[{"product": item["id"], "quantity": 10}])
    assert "lines[0].unit_price" in refused.value.fields
    create(w, "sales_manager", "sales_price", product=item["id"], currency="USD", price=49.0, cost_price=276.0,
           source="price_list")
    general = create(w, "sales_rep", "quote", customer=other["id"], lines=[{"product": item["id"], "quantity": 10}])
    assert num(general["lines"][0]["unit_price"]) == 49.0
    # a typed price is kept; below 8 % margin the quotation goes to the sales manager
    thin = create(w, "sales_rep", "quote", customer=buyer["id"],
                  lines=[{"product": item["id"], "quantity": 100, "unit_price": round(290.0 / fx, 2)}])
    assert num(thin["lines"][0]["unit_price"]) == round(290.0 / fx, 2) and num(thin["min_margin"]) < 8.0
    with raises("ValidationFailed"):
        fire(w, "sales_rep", "quote", thin, "confirm")
    told = Told(w, "sales_manager")
    fire(w, "sales_rep", "quote", thin, "submit")
    assert told.new()
    with raises("Forbidden"):
        fire(w, "sales_rep", "quote", thin, "approve")
    assert fire(w, "sales_manager", "quote", thin, "approve")["state"] == "approved"
    # without an awarded supplier quote the cost is the product's standard cost
    plain = a_product(w, "测试标准成本产品", purchase_cost=120)
    create(w, "sales_manager", "sales_price", product=plain["id"], currency="EUR", price=19.9, source="price_list")
    euro = create(w, "sales_rep", "quote", customer=buyer["id"], currency="EUR",
                  lines=[{"product": plain["id"], "quantity": 10}])
    assert (num(euro["lines"][0]["cost_price"]), num(euro["fx_rate"])) == (120.0, costing(w, "EUR"))


def test_history_of_products_quotations_and_correspondence(w):
    """The last price quoted to this customer for this product is offered again; the price
    history of a product and the customer's mail are kept and findable."""
    from engine.mail.timeline import MailReader
    buyer = a_customer(w, "Test History GmbH", country="DE")
    item = a_product(w, "测试历史报价产品", purchase_cost=50)
    create(w, "sales_manager", "sales_price", product=item["id"], currency="EUR", price=9.5, valid_from=day(-200),
           source="price_list")
    create(w, "sales_rep", "sales_price", product=item["id"], customer=buyer["id"], currency="EUR", price=8.9,
           valid_from=day(-90), cost_price=50)
    create(w, "sales_rep", "sales_price", product=item["id"], customer=buyer["id"], currency="EUR", price=8.6,
           valid_from=day(-10), cost_price=50)

    def quoted(on):
        quote = create(w, "sales_rep", "quote", customer=buyer["id"], quote_date=on,
                       lines=[{"product": item["id"], "quantity": 1000}])
        return quote["currency"], num(quote["lines"][0]["unit_price"])

    assert quoted(day(0)) == ("EUR", 8.6)     # the last price quoted to this customer
    assert quoted(day(-30)) == ("EUR", 8.9)   # ... as it was on that day
    assert quoted(day(-150)) == ("EUR", 9.5)  # before any price of its own: the price list
    history = [r for r in w.report("price_history")["rows"] if r["product"] == item["id"]]
    assert history and history[0]["prices"] == 3 and history[0]["customers"] == 2
    listed = find(w, "sales_price", product=item["id"], customer=buyer["id"])
    assert [num(p["price"]) for p in listed] == [8.6, 8.9]  # newest first
    # the correspondence with a sample customer is on its record, findable by a word
    nordlicht = customer(w, "Nordlicht Elektro")
    messages, _ = MailReader(w.service).for_record(w.as_("admin"), "customer", nordlicht["id"])
    assert messages and all("nordlicht.example" in json.dumps(m) for m in messages)
    found, _ = MailReader(w.service).search(w.as_("admin"), "nordlicht")
    assert {m["id"] for m in found} == {m["id"] for m in messages}


# ---------------------------------------------------------------- mail (邮件管理)

def _message(messages, starts):
    return next(m for m in messages if m["subject"].startswith(starts))


def test_business_mail_captured_matched_threaded_and_searchable(w):
    from engine.mail.imports import import_files
    from engine.mail.timeline import MailReader
    reader, admin = MailReader(w.service), w.as_("admin")
    again = import_files(w.service, [MBOX])[0]
    assert (again.stored, again.duplicates) == (0, 34)  # idempotent on Message-ID
    # a contact's mail is filed under the contact and the contact's customer
    anna = one(w, "contact", email="anna.schmidt@nordlicht.example")
    on_contact, _ = reader.for_record(admin, "contact", anna["id"])
    on_customer, _ = reader.for_record(admin, "customer", anna["customer"])
    assert len(on_contact) == 2 and {m["id"] for m in on_contact} <= {m["id"] for m in on_customer}
    inquiry, reply = _message(on_contact, "Inquiry"), _message(on_contact, "Re: Inquiry")
    assert reply["thread_id"] == inquiry["thread_id"] and reply["in_reply_to"] == inquiry["message_id"]
    assert [a["name"] for a in inquiry["attachments"]] == ["requirements.txt"]
    # a subject naming an opportunity files the mail under it
    opportunity_id = int(inquiry["subject"].split("#")[1].rstrip("]"))
    on_deal, _ = reader.for_record(admin, "opportunity", opportunity_id)
    assert {m["id"] for m in on_deal} >= {inquiry["id"], reply["id"]}
    assert get(w, "opportunity", {"id": opportunity_id})["customer"] == anna["customer"]
    # suppliers' mail is filed under the supplier
    supplier = one(w, "supplier", email="sales@hn-power.example")
    on_supplier, _ = reader.for_record(admin, "supplier", supplier["id"])
    assert len(on_supplier) == 2 and len({m["thread_id"] for m in on_supplier}) == 1
    # searchable by words of the subject, the body, the addresses and attachment names
    assert {m["id"] for m in reader.search(admin, "datasheet")[0]} and reader.search(admin, "含税单价")[0]
    # people see the mail of records they may read: a merchandiser has no suppliers
    assert reader.search(w.as_("purchaser"), "hn-power")[0]
    assert not reader.search(w.as_("merchandiser"), "hn-power")[0]


def test_mail_sent_from_a_quotation_reaches_the_customer_and_its_timeline(w, tmp_path):
    """Outgoing mail from the record (SMTP), with the quotation's number in the subject so the
    answer finds its way back, on the quotation's and the customer's timeline."""
    import engine
    from engine.mail.send import send_from_record
    from engine.mail.timeline import MailReader
    from engine.records.service import RecordService
    from mailservers import SmtpSink
    smtp = SmtpSink()
    try:
        (tmp_path / "app.yaml").write_text(f"""app: trade_site
label: Trade
pack: foreign_trade
mail:
  addresses: ["@brightsun-export.example"]
  smtp:
    host: 127.0.0.1
    port: {smtp.port}
    tls: none
    user: crm
    password_env: TRADE_TEST_SMTP_PASSWORD
    from: "BrightSun Export <sales@brightsun-export.example>"
""", encoding="utf-8")
        site = RecordService(engine.load_registry(site=tmp_path, root=REPO), w.engine)
        rep = w.as_("sales_rep")
        buyer = a_customer(w, "Test Mail Buyer Inc.", role="sales_rep", email="buyer@mailbuyer.example")
        item = a_product(w, "测试邮件报价产品")
        quote = create(w, "sales_rep", "quote", customer=buyer["id"],
                       lines=[{"product": item["id"], "quantity": 5, "unit_price": 10}])
        sent = send_from_record(site, rep, "quote", quote["id"], {
            "to": "buyer@mailbuyer.example", "subject": "Our quotation", "body": "Please find our offer."},
            [], environ={"TRADE_TEST_SMTP_PASSWORD": SmtpSink.PASSWORD})
        assert sent["status"] == "sent" and sent["subject"] == f"Our quotation [{quote['number']}]"
        assert smtp.received[-1][1] == ["buyer@mailbuyer.example"]
        for entity, record_id in (("quote", quote["id"]), ("customer", buyer["id"])):
            assert sent["id"] in {m["id"] for m in MailReader(site).for_record(rep, entity, record_id)[0]}
    finally:
        smtp.stop()


# ---------------------------------------------------------------- opportunities (商机)

def test_opportunities_found_and_followed_continuously(w):
    buyer = a_customer(w, "Test Lead Source Pty Ltd", role="sales_rep", country="AU")
    deal = create(w, "sales_rep", "opportunity", name="Test hybrid inverters AU", customer=buyer["id"],
                  inquiry_source="email", amount=300000)
    assert (deal["country"], deal["next_follow_up"]) == ("AU", on(3))
    with raises("ValidationFailed"):  # an open opportunity always has its next follow-up
        update(w, "sales_rep", "opportunity", deal, next_follow_up=None)
    deal = update(w, "sales_rep", "opportunity", deal, next_follow_up=day(-1))
    told = Told(w, "sales_rep")
    run_on(w, "follow_up_opportunities", "opportunity", deal)
    task = activities_of(w, opportunity=deal["id"])
    assert len(task) == 1 and task[0]["customer"] == buyer["id"] and not task[0]["done"]
    assert told.new() == ["An opportunity is due for follow-up today"]
    deal = get(w, "opportunity", deal)
    assert (deal["next_follow_up"], deal["follow_ups"]) == (on(7), 1)
    run_on(w, "follow_up_opportunities", "opportunity", deal)  # not due again for a week
    assert len(activities_of(w, opportunity=deal["id"])) == 1
    # where inquiries come from and what they become; a lost deal names its reason (a list)
    with raises("ValidationFailed"):
        fire(w, "sales_rep", "opportunity", deal, "lose")
    fire(w, "sales_rep", "opportunity", deal, "lose", loss_reason="delivery")
    sources = {r["inquiry_source"]: r for r in w.report("opportunities_by_source")["rows"]}
    assert {"b2b_platform", "trade_fair", "email"} <= set(sources) and sources["email"]["lost"] >= 1
    assert any(r["overdue"] >= 1 for r in w.report("opportunity_follow_up")["rows"])  # seeded overdue ones


# ---------------------------------------------------------------- samples (样品管理)

def test_samples_requested_approved_shipped_tracked_and_followed_up(w):
    buyer = a_customer(w, "Test Sample Buyer BV", role="sales_rep", country="NL")
    item = product(w, "PPS-1000")
    sample = create(w, "sales_rep", "sample_request", customer=buyer["id"], product=item["id"], quantity=2,
                    sample_value=4300)
    with raises("ValidationFailed"):  # where to send it
        fire(w, "sales_rep", "sample_request", sample, "submit")
    sample = update(w, "sales_rep", "sample_request", sample, ship_to="Keizersgracht 1, Amsterdam")
    told = Told(w, "sales_manager")
    fire(w, "sales_rep", "sample_request", sample, "submit")
    assert told.new() == ["A sample request is waiting for your approval"]
    with raises("Forbidden"):
        fire(w, "sales_rep", "sample_request", sample, "approve")
    approved = fire(w, "sales_manager", "sample_request", sample, "approve")
    assert approved["approved_by"] == w.uid("sales_manager")
    with raises("ValidationFailed"):  # shipped with its courier and tracking number
        fire(w, "merchandiser", "sample_request", sample, "ship")
    shipped = fire(w, "merchandiser", "sample_request", sample, "ship", courier="dhl", tracking_no="1234567890")
    assert (shipped["shipped_on"], shipped["follow_up_on"]) == (on(0), on(10))
    assert shipped["tracking_url"] == "https://www.dhl.com/en/express/tracking.html?AWB=1234567890"
    # the follow-up: a call task once the day has come, and only once
    run_on(w, "follow_up_samples", "sample_request", shipped)
    assert not [a for a in activities_of(w, customer=buyer["id"]) if "Sample" in a["subject"]]
    due = update(w, "merchandiser", "sample_request", shipped, follow_up_on=day(0))
    run_on(w, "follow_up_samples", "sample_request", due)
    run_on(w, "follow_up_samples", "sample_request", get(w, "sample_request", due))
    calls = [a for a in activities_of(w, customer=buyer["id"]) if sample["number"] in a["subject"]]
    assert len(calls) == 1 and calls[0]["kind"] == "call" and get(w, "sample_request", due)["followed_up"]
    delivered = fire(w, "merchandiser", "sample_request", sample, "deliver")
    assert delivered["delivered_on"] == on(0)
    with raises("ValidationFailed"):  # closed with the customer's test result
        fire(w, "sales_rep", "sample_request", sample, "close")
    # the customer's test report is filed on the request (a transition's input takes no file)
    update(w, "sales_rep", "sample_request", sample, test_report=PDF)
    closed = fire(w, "sales_rep", "sample_request", sample, "close", test_result="approved",
                  feedback="Capacity and noise fine; trial order of 200 pcs follows")
    assert closed["state"] == "closed" and get(w, "customer", buyer)["samples_count"] == 1
    assert closed["test_report"]["content_type"] == "application/pdf"
    someone_else = find(w, "order", customer=customer(w, "Brightway")["id"])[0]
    with raises("ValidationFailed"):  # the order it led to is the customer's own
        update(w, "sales_rep", "sample_request", closed, led_to_order=someone_else["id"])
    rows = {r["product"]: r for r in w.report("sample_conversion")["rows"]}
    assert rows[item["id"]]["approved"] >= 1 and rows[item["id"]]["shipped"] >= rows[item["id"]]["approved"]


# ---------------------------------------------------------------- credit (客户资信)

def _order(w, buyer, item, quantity, price, role="sales_rep", **values):
    return create(w, role, "order", customer=buyer["id"], delivery_date=day(30), shipping_address="Port of Los Angeles",
                  lines=[{"product": item["id"], "quantity": quantity, "unit_price": price}], **values)


def test_customer_credit_limit_outstanding_balance_and_over_limit_approval(w):
    buyer = a_customer(w, "Test Credit Importer Inc.", credit_rating="a", credit_limit=100000)
    item = product(w, "LED-PNL-40")
    first = _order(w, buyer, item, 100, 100.0)  # 10,000 USD
    fx = num(first["fx_rate"])
    assert (first["currency"], fx, num(first["total_cny"])) == ("USD", costing(w, "USD"), round(10000 * fx, 2))
    with raises("ValidationFailed"):  # within the limit: no credit approval to ask for
        fire(w, "sales_rep", "order", first, "hold_for_credit")
    fire(w, "sales_rep", "order", first, "confirm")
    assert num(get(w, "customer", buyer)["outstanding"]) == round(10000 * fx, 2)
    with raises("ValidationFailed"):  # a payment is in its order's currency
        create(w, "finance", "payment", customer=buyer["id"], order=first["id"], currency="EUR", amount=100,
               method="bank_transfer")
    payment = create(w, "finance", "payment", customer=buyer["id"], order=first["id"], amount=3000,
                     method="bank_transfer")
    assert payment["currency"] == "USD" and num(payment["amount_cny"]) == round(3000 * num(payment["fx_rate"]), 2)
    assert num(get(w, "customer", buyer)["outstanding"]) == round(7000 * fx, 2)  # orders minus payments
    assert num(get(w, "customer", buyer)["total_paid"]) == num(payment["amount_cny"])  # in CNY, whatever the currency
    # the next order would take the customer over the limit: held for approval
    second = _order(w, buyer, item, 80, 100.0)  # 8,000 USD
    with raises("ValidationFailed"):
        fire(w, "sales_rep", "order", second, "confirm")
    finance, managers = Told(w, "finance"), Told(w, "sales_manager")
    held = fire(w, "sales_rep", "order", second, "hold_for_credit")
    assert held["state"] == "credit_hold"
    assert len(finance.new()) == len(managers.new()) == 1 and "credit limit" in finance.new()[0]
    with raises("Forbidden"):
        fire(w, "sales_rep", "order", held, "approve_credit", credit_note="ok")
    with raises("ValidationFailed"):  # the decision is explained
        fire(w, "finance", "order", held, "approve_credit")
    approved = fire(w, "finance", "order", held, "approve_credit", credit_note="信用证已开立 / L/C opened")
    assert (approved["state"], approved["credit_decided_by"]) == ("confirmed", w.uid("finance"))
    record = get(w, "customer", buyer)
    assert num(record["outstanding"]) == round(15000 * fx, 2) and num(record["credit_available"]) < 0
    assert buyer["name"] in {r["name"] for r in w.report("credit_watchlist")["rows"]}
    # a C-rated customer pays in advance: every order is held, even a small one
    cash = a_customer(w, "Test Cash Only Ltd.", credit_rating="c", credit_limit=1000000)
    small = _order(w, cash, item, 1, 10.0, role="sales_manager")
    with raises("ValidationFailed"):
        fire(w, "sales_manager", "order", small, "confirm")
    small = fire(w, "sales_manager", "order", small, "hold_for_credit")
    with raises("Forbidden"):  # never one's own: another manager or finance approves
        fire(w, "sales_manager", "order", small, "approve_credit", credit_note="ok")
    assert fire(w, "finance", "order", small, "reject_credit", credit_note="先付款 / pay first")["state"] == "draft"
    exposure = {r["credit_rating"]: r for r in w.report("credit_exposure")["rows"]}
    assert exposure["a"]["over_limit"] >= 1 and {"aaa", "aa", "a", "b", "c"} <= set(exposure)


# ---------------------------------------------------------------- analysis (统计分析)

def test_trade_analysed_by_country_product_customer_and_month_with_margin(w):
    from engine.records.reports import run_report
    from engine.records.access import SYSTEM
    result = run_report(w.service, SYSTEM, "trade_by_country")
    names = [c["name"] for c in result["columns"]]
    rows = {row[0]: dict(zip(names, row)) for row in result["rows"]}
    assert len(rows) >= 15 and all(r["sales"] is not None and r["sales"] > 0 for r in rows.values())
    # Japan: sales converted at the market rate of each order's day, margin at the costing rate
    counted = [o for o in find(w, "order", country="JP") if o["state"] in ("confirmed", "shipped", "delivered", "completed")]
    expected_sales = sum(Decimal(o["total"]) * w.rates.rate_on(o["currency"], o["order_date"])
                         for o in counted)
    assert rows["JP"]["orders"] == len(counted)
    assert float(rows["JP"]["sales"]) == pytest.approx(float(expected_sales), abs=0.05)
    assert float(rows["JP"]["margin"]) == pytest.approx(sum(num(o["margin_cny"]) for o in counted if o["margin_cny"]),
                                                        abs=0.05)
    assert 5 < rows["JP"]["margin_rate"] < 40
    # the report says which rates it used, in CNY
    assert result["currency"]["base"] == "CNY" and result["currency"]["measures"]["sales"]["converted"]
    used = {(r["currency"], r["group"][0]) for r in result["currency"]["rates"] if r["measure"] == "sales"}
    assert ("USD", "JP") in used and ("EUR", "DE") in used and not result["currency"].get("unconvertible")
    by_product = w.report("trade_by_product")["rows"]
    assert len(by_product) >= 10 and all(r["units"] > 0 for r in by_product)
    assert any(r["margin"] and r["margin"] > 0 for r in by_product)
    by_month = w.report("trade_by_month")["rows"]
    assert len(by_month) >= 12 and all(r["orders"] > 0 for r in by_month)
    by_customer = w.report("trade_by_customer")["rows"]
    assert len(by_customer) >= 25 and by_customer[0]["sales"] >= by_customer[-1]["sales"]
    currencies = {r["currency"] for r in w.report("trade_by_currency")["rows"]}
    assert currencies == {"USD", "EUR", "CNY"}


def test_orders_in_several_currencies_reported_in_cny_with_the_rates(w):
    buyer = a_customer(w, "Test Euro Distributor SARL", country="FR", credit_limit=5000000, credit_rating="aa")
    item = product(w, "LED-HB-150")
    euro = _order(w, buyer, item, 20, 42.0, currency="EUR")
    fx = costing(w, "EUR")
    assert (euro["currency"], num(euro["fx_rate"]), num(euro["total_cny"])) == ("EUR", fx, round(840 * fx, 2))
    # the exchange cost: CNY spent per euro earned, against the costing rate
    assert num(euro["exchange_cost"]) == round(num(euro["cost_cny"]) / 840.0, 4) < fx
    with raises("ValidationFailed") as refused:  # no rate for that day, no order in that currency
        _order(w, buyer, item, 1, 1.0, currency="USD", order_date="2023-01-02")
    assert "No exchange rate" in str(refused.value.fields) or "汇率" in str(refused.value.fields)
    # the market rate the reports use for a day is the latest on or before it
    assert w.rates.rate_on("EUR", today()) is not None
    domestic = _order(w, customer(w, "前海跨境"), item, 10, 300.0, role="sales_manager")
    assert (domestic["currency"], num(domestic["fx_rate"]), num(domestic["total_cny"])) == ("CNY", 1.0, 3000.0)


# ---------------------------------------------------------------- electronics (电子电器)

def test_customer_tiers(w):
    big = a_customer(w, "Test Tier Retail Corp.", tier="b", credit_limit=50000000, credit_rating="aaa")
    assert get(w, "customer", big)["value_tier"] == "c"
    item = product(w, "INV-10H")
    order = _order(w, big, item, 150, 1450.0, role="sales_manager", allow_backorder=True)  # 217,500 USD
    fire(w, "sales_manager", "order", order, "confirm")
    record = get(w, "customer", big)
    assert num(record["sales_12m"]) == num(get(w, "order", order)["total_cny"]) and record["value_tier"] == "a"
    # the tier sets the margin an RFQ adds for the customer
    for tier, margin in (("a", 12.0), ("b", 15.0), ("c", 20.0)):
        holder = a_customer(w, f"Test Tier {tier.upper()} Buyer", tier=tier)
        rfq = create(w, "purchaser", "rfq", subject="tier", product=item["id"], quantity=1, customer=holder["id"])
        assert num(rfq["target_margin"]) == margin
    rows = w.report("customers_by_value_tier")["rows"]
    assert {(r["tier"], r["value_tier"]) for r in rows} >= {("b", "a")}
    assert {r["value_tier"] for r in rows} == {"a", "b", "c"}


def _signed(body: bytes, secret: str, stamp: str) -> dict:
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-ERP-Signature": f"sha256={digest}", "X-ERP-Timestamp": stamp, "Content-Type": "application/json"}


def test_accurate_stock_availability_shown_when_ordering(w, monkeypatch):
    from web import create_app
    item = a_product(w, "测试库存逆变器", stock_on_hand=50, stock_reserved=10, purchase_cost=100)
    assert item["stock_available"] == 40
    with raises("ValidationFailed"):
        update(w, "admin", "product", item, stock_reserved=60)
    buyer = a_customer(w, "Test Stock Buyer LLC", credit_limit=10000000, credit_rating="aa")
    fits = _order(w, buyer, item, 30, 10.0)
    assert (fits["lines"][0]["stock_available"], fits["lines"][0]["short"], fits["short_lines"]) == (40, False, 0)
    short = _order(w, buyer, item, 45, 10.0)
    assert (short["lines"][0]["short"], short["short_lines"]) == (True, 1)
    with raises("ValidationFailed"):  # short of stock: confirmed only as a backorder
        fire(w, "sales_rep", "order", short, "confirm")
    short = update(w, "sales_rep", "order", short, allow_backorder=True)
    assert fire(w, "sales_rep", "order", short, "confirm")["state"] == "confirmed"
    # the ERP reports the stock (signed, idempotent)
    monkeypatch.setenv("CRM_SECRET_KEY", "test-secret-key")
    monkeypatch.setenv("TRADE_ERP_SECRET", "erp-secret")
    client = create_app(w.registry, w.engine).test_client()
    body = json.dumps({"id": f"stock-{item['id']}", "data": {"sku": item["code"], "on_hand": 200, "reserved": 20,
                                                              "as_of": "2026-12-01T06:00:00Z"}}).encode()
    stamp = str(int(time.time()))
    bad = client.post("/api/v1/inbound/erp_stock", data=body, headers=_signed(body, "wrong", stamp))
    assert bad.status_code == 401 and get(w, "product", item)["stock_on_hand"] == 50
    answer = client.post("/api/v1/inbound/erp_stock", data=body, headers=_signed(body, "erp-secret", stamp))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert get(w, "product", item)["stock_available"] == 180
    again = client.post("/api/v1/inbound/erp_stock", data=body, headers=_signed(body, "erp-secret", stamp))
    assert again.get_json()["data"]["replayed"] is True
    now_fits = _order(w, buyer, item, 45, 10.0)
    assert (now_fits["lines"][0]["stock_available"], now_fits["short_lines"]) == (180, 0)
    quote = create(w, "sales_rep", "quote", customer=buyer["id"], lines=[{"product": item["id"], "quantity": 5,
                                                                            "unit_price": 10}])
    assert quote["lines"][0]["stock_available"] == 180  # shown when quoting too
    assert any(r["available"] > 0 for r in w.report("stock_availability")["rows"])


def test_serial_numbers_of_the_products_sold(w):
    buyer = a_customer(w, "Test Serial Buyer GmbH", country="DE", credit_limit=10000000, credit_rating="aa")
    unit, plain = product(w, "INV-5K"), product(w, "LED-PNL-40")
    order = create(w, "sales_rep", "order", customer=buyer["id"], delivery_date=day(20), shipping_address="Hamburg",
                   lines=[{"product": unit["id"], "quantity": 2, "unit_price": 560.0},
                          {"product": plain["id"], "quantity": 100, "unit_price": 13.0}])
    assert (order["currency"], num(order["serialized_units"]), order["serials_missing"]) == ("EUR", 2, 2)
    fire(w, "sales_rep", "order", order, "confirm")
    with raises("ValidationFailed"):  # every serialised unit has its number before it ships
        fire(w, "merchandiser", "order", order, "ship")
    first = create(w, "merchandiser", "serial_number", serial_no="INV5K-TEST-0001", product=unit["id"],
                   order=order["id"], shipped_on=day(0))
    assert first["customer"] == buyer["id"]  # the order's customer
    with raises("ValidationFailed"):  # not a serialised product
        create(w, "merchandiser", "serial_number", serial_no="PNL-TEST-0001", product=plain["id"], order=order["id"])
    with raises("ValidationFailed"):  # the unit goes to the order's customer
        create(w, "merchandiser", "serial_number", serial_no="INV5K-TEST-0002", product=unit["id"],
               order=order["id"], customer=customer(w, "Brightway")["id"])
    with raises("ValidationFailed"):  # unique
        create(w, "merchandiser", "serial_number", serial_no="INV5K-TEST-0001", product=unit["id"], order=order["id"])
    with raises("ValidationFailed"):  # the serial number's form
        create(w, "merchandiser", "serial_number", serial_no="inv 5k/1", product=unit["id"], order=order["id"])
    assert get(w, "order", order)["serials_missing"] == 1
    create(w, "merchandiser", "serial_number", serial_no="INV5K-TEST-0002", product=unit["id"], order=order["id"],
           shipped_on=day(0))
    assert fire(w, "merchandiser", "order", order, "ship")["state"] == "shipped"
    # sixty months of warranty from shipping; findable by its number
    assert first["warranty_until"] == (dt.datetime.combine(today(), dt.time()) + dt.timedelta(hours=60 * 730)).date()
    assert first["under_warranty"]
    assert [s["id"] for s in find(w, "serial_number", search="INV5K-TEST-0001")] == [first["id"]]
    assert get(w, "customer", buyer)["units_sold"] == 2
    rows = [r for r in w.report("serials_by_product")["rows"] if r["product"] == unit["id"]]
    assert rows and sum(r["under_warranty"] for r in rows) >= 2


def test_spare_units_and_spare_parts(w):
    board, inverter = product(w, "SP-INV5-CB"), product(w, "INV-5K")
    assert board["product_kind"] == "spare_part" and board["spare_for"] == inverter["id"]
    with raises("ValidationFailed"):  # a spare part names the unit it fits
        a_product(w, "测试无主备件", product_kind="spare_part")
    unit = find(w, "serial_number", product=inverter["id"])[0]
    owner = {"id": unit["customer"]}
    base = dict(customer=owner["id"], faulty_serial=unit["id"], reason="warranty")
    for wrong in ({"kind": "spare_part", "product": inverter["id"]},   # a spare part issue is for a part
                  {"kind": "spare_unit", "product": board["id"]},      # a spare unit is a finished unit
                  {"kind": "spare_part", "product": board["id"], "faulty_serial": None}):  # which unit failed
        with raises("ValidationFailed"):
            create(w, "merchandiser", "spare_issue", **{**base, **wrong})
    stranger = a_customer(w, "Test Spare Stranger Ltd.")
    with raises("ValidationFailed"):  # the faulty unit is this customer's
        create(w, "merchandiser", "spare_issue", **{**base, "customer": stranger["id"]}, kind="spare_part",
               product=board["id"])
    told = Told(w, "service_manager")
    issue = create(w, "merchandiser", "spare_issue", **base, kind="spare_part", product=board["id"], quantity=1)
    assert issue["free_of_charge"] and num(issue["value"]) == num(board["purchase_cost"])
    assert told.new() == ["A spare unit or part request is waiting for your approval"]
    with raises("Forbidden"):
        fire(w, "merchandiser", "spare_issue", issue, "approve")
    fire(w, "service_manager", "spare_issue", issue, "approve")
    with raises("ValidationFailed"):
        fire(w, "merchandiser", "spare_issue", issue, "ship")
    shipped = fire(w, "merchandiser", "spare_issue", issue, "ship", courier="DHL", tracking_no="9988776655")
    assert (shipped["state"], shipped["shipped_on"]) == ("shipped", on(0))
    # a spare unit beyond the stock available does not ship
    too_many = create(w, "merchandiser", "spare_issue", kind="spare_unit", customer=owner["id"], product=inverter["id"],
                      quantity=inverter["stock_available"] + 1, reason="consignment")
    fire(w, "sales_manager", "spare_issue", too_many, "approve")
    with raises("ValidationFailed"):
        fire(w, "merchandiser", "spare_issue", too_many, "ship", courier="DHL", tracking_no="1122334455")
    kinds = {(r["kind"], r["reason"]) for r in w.report("spare_issues")["rows"]}
    assert ("spare_part", "warranty") in kinds and ("spare_unit", "consignment") in kinds


# ---------------------------------------------------------------- trade documents (外贸单据)

def test_quotation_proforma_invoice_and_packing_list_print(w):
    from engine.documents.render import Documents
    documents = Documents(w.registry, w.service)
    buyer = a_customer(w, "Test Documents Trading LLC", country="AE", credit_limit=10000000, credit_rating="aa",
                       payment_terms="lc_sight")
    item = product(w, "LED-HB-150")  # 4 per carton
    quote = create(w, "sales_rep", "quote", customer=buyer["id"], incoterm="CIF", port="Shenzhen",
                   lines=[{"product": item["id"], "quantity": 10, "unit_price": 1234.5}])
    page = documents.print(w.as_("sales_rep"), "quote", quote["id"], "quotation").content
    for expected in (f"Quotation {quote['number']}", "Test Documents Trading LLC", "United Arab Emirates",
                     "CIF Shenzhen", "L/C at sight", "1,234.50", "USD 12,345.00", item["hs_code"]):
        assert expected in page, expected
    assert "Margin" not in page and "Cost" not in page  # internal figures stay in the CRM
    pdf = documents.print(w.as_("sales_rep"), "quote", quote["id"], "quotation", fmt="pdf").content
    assert pdf.startswith(b"%PDF")
    order = _order(w, buyer, item, 10, 46.0)
    create(w, "finance", "payment", customer=buyer["id"], order=order["id"], amount=100, method="bank_transfer")
    invoice = documents.print(w.as_("sales_rep"), "order", order["id"], "proforma_invoice").content
    assert f"Proforma invoice {order['number']}" in invoice and "USD 460.00" in invoice and "USD 360.00" in invoice
    packing = documents.print(w.as_("merchandiser"), "order", order["id"], "packing_list").content
    cartons = 3  # 10 units, 4 to a carton
    assert f'<td class="num">{cartons}</td>' in packing
    assert f"{cartons * float(item['carton_gross_kg']):,.1f}" in packing
    with raises("Forbidden"):  # marketing reads orders but prints no proforma
        documents.print(w.as_("marketing"), "order", order["id"], "proforma_invoice")


def test_demo_site_pages_render(w, monkeypatch):
    """What `crm demo --pack foreign_trade` serves: every dashboard and list page (SQLite only)."""
    if w.kind != "sqlite":
        pytest.skip("the pages are the same on PostgreSQL; rendered once")
    assert_demo_pages_render(w, monkeypatch)
