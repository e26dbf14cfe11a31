"""The printable document of a record: `/<entity>/<id>/print` (docs/ui.md)."""

import re

import pytest

from conftest import World, write_site
from engine.records.access import SYSTEM
from test_web_ui import html, post, sign_in
from web import create_app

SITE = {
    "app.yaml": "app: print_site\nlabel: {en: Acme Machinery, zh: 艾克米机械}\nlocale: en\n",
    "entities/customer.yaml": """
        entity: customer
        label: {en: Customer, zh: 客户}
        fields:
          name: {type: string, required: true, label: {en: Name, zh: 名称}}
          city: {type: string, label: {en: City, zh: 城市}}
        """,
    "entities/quote.yaml": """
        entity: quote
        label: {en: Quotation, zh: 报价单}
        title: subject
        fields:
          number: {type: autonumber, pattern: "QT-{YYYY}-{seq:4}", label: {en: Quote no., zh: 报价单号}}
          subject: {type: string, required: true, label: {en: Subject, zh: 主题}}
          customer: {type: reference, to: customer, label: {en: Customer, zh: 客户}}
          terms: {type: text, label: {en: Payment terms, zh: 付款条件}}
          margin: {type: percent, label: {en: Internal margin, zh: 内部毛利}}
          valid_until: {type: date, label: {en: Valid until, zh: 有效期至}}
          lines: {type: lines, entity: quote_line, label: {en: Items, zh: 明细}}
          total: {type: rollup, of: lines, field: amount, agg: sum, label: {en: Total, zh: 合计}}
        form:
          sections:
            - label: {en: Terms, zh: 条款}
              fields: [terms, valid_until]
            - label: {en: Quote, zh: 报价}
              fields: [subject, customer, margin, lines]
        """,
    "entities/quote_line.yaml": """
        entity: quote_line
        parent: quote
        fields:
          item: {type: string, required: true, label: {en: Item, zh: 品名}}
          quantity: {type: integer, default: 1, label: {en: Quantity, zh: 数量}}
          price: {type: money, required: true, label: {en: Unit price, zh: 单价}}
          cost: {type: money, label: {en: Unit cost, zh: 单位成本}}
          amount: {type: money, compute: "double(quantity) * price", label: {en: Amount, zh: 金额}}
        """,
    "roles.yaml": """
        roles:
          rep:
            entities:
              customer: {read: all}
              quote: {read: own, create: true, update: own}
            fields:
              quote.margin: hidden
              quote_line.cost: hidden
        """,
}


@pytest.fixture
def client(tmp_path, database_url, monkeypatch):
    monkeypatch.setenv("CRM_SECRET_KEY", "test-secret-key")
    world = World(database_url, site=write_site(tmp_path / "site", SITE))
    for name in ("rep", "other"):
        world.users.create(name, f"pw-{name}", ["rep"])
    world.users.create("boss", "pw-boss", ["admin"])
    client = create_app(world.registry, world.engine).test_client()
    client.world = world
    yield client
    world.engine.dispose()


def make_quote(client, subject="Pump <b>set</b>", owner="rep"):
    service = client.world.service
    customer = service.create(SYSTEM, "customer", {"name": "华东机电 & Co"})
    owner_id = client.world.users.by_username(owner)
    return service.create(SYSTEM, "quote", {
        "subject": subject, "customer": customer["id"], "terms": "30 days net",
        "margin": "35", "owner": owner_id, "lines": [
            {"item": "Pump <script>alert(1)</script>", "quantity": 2, "price": "1200",
             "cost": "700"},
            {"item": "Seal kit", "price": "80.5", "cost": "20"}]})


def test_the_document_shows_header_fields_lines_and_totals(client):
    quote = make_quote(client)
    sign_in(client, "rep")
    response = client.get(f"/quote/{quote['id']}/print")
    assert response.status_code == 200
    page = html(response)
    assert 'class="topbar"' not in page  # its own page, not the app's chrome
    assert "/static/print.css" in page and "/static/ui.css" not in page
    head = page.split('class="doc-title"')[0]
    assert "Acme Machinery" in head and "Quotation" in head
    assert quote["number"].startswith("QT-") and quote["number"] in page
    assert "Pump &lt;b&gt;set&lt;/b&gt;" in page  # the title, escaped
    assert re.search(r"<dt>Printed</dt><dd>\d{4}-\d\d-\d\d \d\d:\d\d UTC</dd>", page)
    assert "<dt>Owner</dt><dd>rep</dd>" in page
    # the form sections in their order, with the fields the rep may read
    assert page.index("<h2>Terms</h2>") < page.index("30 days net") < page.index("<h2>Quote</h2>")
    assert "华东机电 &amp; Co" in page
    # the lines as a table, the rollup over them below it
    lines = page.split('class="doc-lines"')[1]
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", lines)
    assert headers == ["#", "Item", "Quantity", "Unit price", "Amount"]
    assert "Pump &lt;script&gt;alert(1)&lt;/script&gt;" in lines
    assert '<td class="num">2400.00</td>' in lines and '<td class="num">80.50</td>' in lines
    assert re.search(r'class="doc-totals">\s*<div><dt>Total</dt><dd>2480.50</dd>', lines)
    assert "<script>alert(1)</script>" not in page and "<b>set</b>" not in page


def test_hidden_fields_are_not_printed(client):
    quote = make_quote(client)
    sign_in(client, "rep")
    page = html(client.get(f"/quote/{quote['id']}/print"))
    assert "Internal margin" not in page and "35.00" not in page
    assert "Unit cost" not in page and "700.00" not in page
    post(client, "/logout", {}, "/quote")
    sign_in(client, "boss")
    page = html(client.get(f"/quote/{quote['id']}/print"))
    assert "<dt>Internal margin</dt><dd>35.00</dd>" in page and "700.00" in page


def test_labels_follow_the_users_language(client):
    quote = make_quote(client)
    sign_in(client, "rep")
    post(client, "/locale", {"locale": "zh"}, "/quote")
    page = html(client.get(f"/quote/{quote['id']}/print"))
    assert 'lang="zh-CN"' in page
    for text in ("艾克米机械", "报价单", "报价单号", "<h2>条款</h2>", "付款条件", "<h2>明细</h2>",
                 "品名", "单价", "<dt>合计</dt>", "<dt>负责人</dt>", "<dt>打印时间</dt>", "打印"):
        assert text in page, text
    assert "Quotation" not in page and "Unit price" not in page


def test_unreadable_records_and_child_entities_are_not_found(client):
    quote = make_quote(client, owner="other")
    sign_in(client, "rep")
    assert client.get(f"/quote/{quote['id']}/print").status_code == 404
    assert client.get("/quote/999999/print").status_code == 404
    assert client.get("/quote_line/1/print").status_code == 404
    assert client.get("/nothing/1/print").status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(client):
    quote = make_quote(client)
    response = client.get(f"/quote/{quote['id']}/print")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_the_record_page_links_to_the_document(client):
    quote = make_quote(client)
    sign_in(client, "rep")
    page = html(client.get(f"/quote/{quote['id']}"))
    assert f'href="/quote/{quote["id"]}/print" target="_blank"' in page


def test_an_entity_without_sections_or_lines_prints_its_fields(client):
    sign_in(client, "boss")
    customer = client.world.service.create(SYSTEM, "customer", {"name": "Solo <i>Ltd</i>",
                                                                 "city": "Wuxi"})
    page = html(client.get(f"/customer/{customer['id']}/print"))
    assert "<h1>Solo &lt;i&gt;Ltd&lt;/i&gt;</h1>" in page  # the title heads the document
    assert "<h2>Details</h2>" in page and "<dt>City</dt><dd>Wuxi</dd>" in page
    assert "<dt>Name</dt>" not in page  # not repeated among the fields
    assert 'class="doc-lines"' not in page
