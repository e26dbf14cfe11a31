"""Printable documents: declared in documents/*.yaml, Jinja2 templates rendered to HTML and PDF
(docs/language.md#17-printable-documents, docs/ui.md#printable-documents)."""

import contextlib
import io
import re
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from pypdf import PdfReader

from conftest import BARE_ROOT, World, problems_of, write_site
from pgdb import temporary_database
from engine.documents.sandbox import SecurityError, document_environment, find_asset, render_bounded,\
    render_deadline
from engine.records.access import SYSTEM
from test_web_ui import html, post, sign_in
from web import create_app


def png() -> bytes:
    """A 2x2 red PNG: the logo of the fixture site."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


SITE = {
    "app.yaml": """
        app: doc_site
        label: {en: Acme CRM, zh: 艾克米客户管理}
        locale: en
        company:
          name: {en: Acme Machinery Co., zh: 艾克米机械有限公司}
          address: {en: 88 Jinqiao Road Shanghai, zh: 上海市金桥路88号}
          phone: "+86 21 5555 0000"
        """,
    "entities/customer.yaml": """
        entity: customer
        label: {en: Customer, zh: 客户}
        fields:
          name: {type: string, required: true, label: {en: Name, zh: 名称}}
          country:
            type: enum
            label: {en: Country, zh: 国家}
            options:
              - {value: cn, label: {en: China, zh: 中国}}
              - {value: de, label: {en: Germany, zh: 德国}}
        """,
    "entities/product.yaml": """
        entity: product
        fields:
          name: {type: string, required: true}
          hs_code: {type: string, label: {en: HS code, zh: 海关编码}}
          weight: {type: decimal, scale: 2}
        """,
    "entities/quote.yaml": """
        entity: quote
        label: {en: Quote, zh: 报价}
        title: subject
        fields:
          number: {type: autonumber, pattern: "QT-{seq:4}"}
          subject: {type: string, required: true, label: {en: Subject, zh: 主题}}
          customer: {type: reference, to: customer, label: {en: Buyer, zh: 买方}}
          margin: {type: percent, label: {en: Internal margin, zh: 内部毛利}}
          valid_until: {type: date, label: {en: Valid until, zh: 有效期至}}
          lines: {type: lines, entity: quote_line, label: {en: Items, zh: 明细}}
          total: {type: rollup, of: lines, field: amount, agg: sum, label: {en: Total, zh: 合计}}
        """,
    "entities/quote_line.yaml": """
        entity: quote_line
        parent: quote
        fields:
          product: {type: reference, to: product, label: {en: Product, zh: 产品}}
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
              product: {read: all}
              quote: {read: own, create: true, update: own}
            fields:
              quote.margin: hidden
              quote_line.cost: hidden
          logistics:
            entities:
              customer: {read: all}
              product: {read: all}
              quote: {read: all}
          shipping_lead:
            inherits: [logistics]
        """,
    "documents/quotation.yaml": """
        document: quotation
        entity: quote
        label: {en: Quotation, zh: 报价单}
        template: templates/quotation.html
        description: {en: The offer sent to the buyer, zh: 发给买方的报价}
        """,
    "documents/templates/quotation.html": """
        {% extends "base.html" %}
        {% block content %}
        <img src="{{ asset('images/logo.png') }}" width="20">
        <h1>{{ document.label }} {{ record.number }}</h1>
        <p class="buyer">{{ label(record, 'customer') }}: {{ record.customer }} ({{ show(record.customer, 'country') }})</p>
        {% if record.margin is defined %}<p class="margin">{{ label(record, 'margin') }} {{ record.margin | percent }}</p>{% endif %}
        <p>{{ label(record, 'valid_until') }}: {{ record.valid_until | date }}</p>
        <table class="lines">
        <tr><th>#</th><th>{{ label('quote_line', 'product') }}</th><th>{{ label('quote_line', 'quantity') }}</th><th>{{ label('quote_line', 'price') }}</th><th>{{ label('quote_line', 'cost') }}</th></tr>
        {% for line in record.lines %}
        <tr><td>{{ loop.index }}</td><td>{{ line.product }} / {{ line.product.hs_code }}</td><td class="num">{{ line.quantity | number }}</td><td class="num">{{ line.price | money('USD') }}</td><td class="num">{{ line.cost | money }}</td></tr>
        {% endfor %}
        </table>
        <p class="total">{{ label(record, 'total') }} {{ record.total | money('USD') }}</p>
        <p class="shown">{{ show(record.lines[0], 'price') }} | {{ show(record.lines[0], 'quantity') }} | {{ show(record, 'valid_until') }} | {{ show(record, 'total') }} | {{ show(record, 'margin') }}</p>
        <p class="who">{{ user.name }} · {{ record.owner.name }}</p>
        {% endblock %}
        """,
    "documents/packing_list.yaml": """
        document: packing_list
        entity: quote
        label: {en: Packing list, zh: 装箱单}
        template: templates/packing_list.html
        paper: a4
        orientation: landscape
        roles: [logistics]
        locale: zh
        """,
    "documents/templates/packing_list.html": """
        <html><body>
        <h1>{{ document.label }} {{ record.number }}</h1>
        {% for line in record.lines %}
        <p>{{ label(line, 'product') }} {{ line.product.name }} {{ line.product.weight | number(1) }} kg</p>
        {% endfor %}
        <p>{{ today | date }}</p>
        </body></html>
        """,
    "documents/probe.yaml": """
        document: probe
        entity: quote
        template: probe.html
        """,
    "documents/probe.html": """
        <p>{{ record.subject }}</p>
        {% if 'escape' in record.subject %}
        <p>{{ record | attr('__class__') }}</p>
        {% endif %}
        {% if 'repeat' in record.subject %}
        <p>{{ 'ab' * 10000000 }}</p>
        {% endif %}
        {% if 'remote' in record.subject %}
        <img src="{{ record.subject.split(' ')[1] }}"><img src="/etc/hosts">
        {% endif %}
        {% if 'bomb' in record.subject %}
        <p>{{ ('%0300000000d' % 1) if 'format' in record.subject else 'x'|center(300000000) }}</p>
        {% endif %}
        """,
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory):
    """The fixture site's app and world, once per database kind: each test makes its own
    records, so they share it."""
    folder = tmp_path_factory.mktemp("documents")
    site = write_site(folder / "site", SITE)
    (site / "documents" / "images").mkdir()
    (site / "documents" / "images" / "logo.png").write_bytes(png())
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{folder / 'test.db'}"
        else:
            url = stack.enter_context(temporary_database(
                request.getfixturevalue("postgres_server_url")))
        world = World(url, site=site)
        stack.callback(world.engine.dispose)
        for name, role in (("rep", "rep"), ("other", "rep"), ("packer", "logistics"),
                           ("lead", "shipping_lead"), ("boss", "admin")):
            world.users.create(name, f"pw-{name}", [role])
        # the session key is the site's own (<site>/.crm/secret_key)
        yield create_app(world.registry, world.engine), world


@pytest.fixture
def client(served):
    app, world = served
    client = app.test_client()  # a fresh cookie jar: signed out
    client.world = world
    return client


def make_quote(client, subject="Pump <b>set</b>", owner="rep"):
    service = client.world.service
    customer = service.create(SYSTEM, "customer", {"name": "华东机电 & Co", "country": "cn"})
    pump = service.create(SYSTEM, "product", {"name": "Pump <i>X</i>", "hs_code": "8413.70",
                                              "weight": "12.5"})
    seal = service.create(SYSTEM, "product", {"name": "密封件", "hs_code": "4016.93",
                                              "weight": "0.25"})
    return service.create(SYSTEM, "quote", {
        "subject": subject, "customer": customer["id"], "margin": "35",
        "valid_until": "2026-11-25", "owner": client.world.users.by_username(owner), "lines": [
            {"product": pump["id"], "quantity": 1200, "price": "1234.5", "cost": "777.25"},
            {"product": seal["id"], "price": "80.5", "cost": "20"}]})


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def token(client, username):
    response = client.post("/api/v1/auth/token", json={"username": username,
                                                       "password": f"pw-{username}"})
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


# ---------------------------------------------------------------- the HTML view

def test_the_html_document_holds_the_records_values(client):
    quote = make_quote(client)
    sign_in(client, "rep")
    response = client.get(f"/quote/{quote['id']}/documents/quotation")
    assert response.status_code == 200 and response.mimetype == "text/html"
    # the document styles itself and shows its images; it runs nothing
    csp = response.headers["Content-Security-Policy"]
    assert csp.startswith("default-src 'none'")
    # a unique origin: no script, no same-origin request; only printing (a modal) and links
    assert csp.endswith("; sandbox allow-popups allow-modals")
    assert response.headers["Cache-Control"] == "no-store"
    page = html(response)
    assert '<div class="company">Acme Machinery Co.</div>' in page  # base.html's letterhead
    assert "88 Jinqiao Road Shanghai" in page and "+86 21 5555 0000" in page
    assert f"<h1>Quotation {quote['number']}</h1>" in page
    assert "<title>Quotation Pump &lt;b&gt;set&lt;/b&gt;</title>" in page
    assert '<p class="buyer">Buyer: 华东机电 &amp; Co (China)</p>' in page
    assert "Valid until: 25 Nov 2026" in page
    rows = re.findall(r"<tr><td>(\d)</td><td>(.*?)</td><td class=\"num\">(.*?)</td>"
                      r"<td class=\"num\">(.*?)</td>", page)
    assert rows == [("1", "Pump &lt;i&gt;X&lt;/i&gt; / 8413.70", "1,200", "USD 1,234.50"),
                    ("2", "密封件 / 4016.93", "1", "USD 80.50")]
    assert '<p class="total">Total USD 1,481,480.50</p>' in page
    assert '<p class="who">rep · rep</p>' in page
    # show() gives a value as the record page does; a hidden one (the margin) as nothing
    assert '<p class="shown">1,234.50 | 1,200 | 25 Nov 2026 | 1,481,480.50 | </p>' in page
    assert '<img src="/document-assets/images/logo.png"' in page
    logo = client.get("/document-assets/images/logo.png")
    assert logo.status_code == 200 and logo.mimetype == "image/png" and logo.data == png()
    assert client.get("/document-assets/images/missing.png").status_code == 404
    assert client.get("/document-assets/quotation.yaml").status_code == 404  # images only


def test_fields_hidden_from_the_user_are_not_in_the_document(client):
    quote = make_quote(client)
    sign_in(client, "rep")
    page = html(client.get(f"/quote/{quote['id']}/documents/quotation"))
    assert 'class="margin"' not in page and "35.00%" not in page
    assert "777.25" not in page and "20.00" not in page
    post(client, "/logout", {}, "/quote")
    sign_in(client, "boss")
    page = html(client.get(f"/quote/{quote['id']}/documents/quotation"))
    assert '<p class="margin">Internal margin 35.00%</p>' in page
    assert '<td class="num">777.25</td>' in page and '<td class="num">20.00</td>' in page


def test_the_document_is_printed_in_the_asked_language(client):
    quote = make_quote(client)
    sign_in(client, "rep")
    page = html(client.get(f"/quote/{quote['id']}/documents/quotation?locale=zh"))
    assert '<html lang="zh-CN">' in page
    for text in ("艾克米机械有限公司", "上海市金桥路88号", "<h1>报价单 ", "买方: 华东机电 &amp; Co (中国)",
                 "有效期至: 2026年11月25日", "<th>产品</th>", "<th>单价</th>"):
        assert text in page, text
    assert client.get(f"/quote/{quote['id']}/documents/quotation?locale=fr").status_code == 400


# ---------------------------------------------------------------- PDF

def test_the_pdf_holds_the_text_in_chinese_and_english(client):
    quote = make_quote(client)
    sign_in(client, "rep")
    response = client.get(f"/quote/{quote['id']}/documents/quotation.pdf?locale=zh")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''" in disposition
    text = pdf_text(response.data)
    for expected in ("艾克米机械有限公司", f"报价单 {quote['number']}", "买方: 华东机电 & Co (中国)",
                     "2026年11月25日", "密封件", "USD 1,234.50", "合计 USD 1,481,480.50"):
        assert expected in text, (expected, text)
    assert "777.25" not in text and "内部毛利" not in text  # hidden from the rep
    reader = PdfReader(io.BytesIO(response.data))
    assert len(reader.pages[0].images) == 1  # the logo, read from the documents/ folder
    width, height = reader.pages[0].mediabox.width, reader.pages[0].mediabox.height
    assert (round(width), round(height)) == (595, 842)  # A4 portrait


def test_a_document_with_its_own_language_paper_and_roles(client):
    quote = make_quote(client)
    sign_in(client, "lead")  # shipping_lead inherits logistics, which may print it
    response = client.get(f"/quote/{quote['id']}/documents/packing_list.pdf")
    assert response.status_code == 200
    reader = PdfReader(io.BytesIO(response.data))
    assert reader.pages[0].mediabox.width > reader.pages[0].mediabox.height  # landscape
    text = pdf_text(response.data)
    assert f"装箱单 {quote['number']}" in text  # `locale: zh`, whatever the user's language
    assert "产品 Pump <i>X</i> 12.5 kg" in text and "产品 密封件 0.3 kg" in text


def test_the_pdf_fetches_nothing_from_the_network(client):
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(png())

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/logo.png"
        quote = make_quote(client, subject=f"remote {url}")
        sign_in(client, "boss")
        response = client.get(f"/quote/{quote['id']}/documents/probe.pdf")
        assert response.status_code == 200 and response.data.startswith(b"%PDF")
        assert len(PdfReader(io.BytesIO(response.data)).pages[0].images) == 0
        assert hits == []
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- permissions and errors

def test_who_may_print_what(client):
    mine, theirs = make_quote(client), make_quote(client, owner="other")
    sign_in(client, "rep")
    assert client.get(f"/quote/{theirs['id']}/documents/quotation").status_code == 404
    assert client.get(f"/quote/{theirs['id']}/documents/quotation.pdf").status_code == 404
    assert client.get(f"/quote/{mine['id']}/documents/packing_list").status_code == 403
    assert client.get(f"/quote/{mine['id']}/documents/nothing").status_code == 404
    assert client.get(f"/customer/{mine['customer']}/documents/quotation").status_code == 404
    assert client.get("/quote/999999/documents/quotation").status_code == 404
    assert client.get("/quote_line/1/documents/quotation").status_code == 404
    post(client, "/logout", {}, "/quote")
    sign_in(client, "packer")
    assert client.get(f"/quote/{theirs['id']}/documents/packing_list").status_code == 200
    post(client, "/logout", {}, "/quote")
    sign_in(client, "boss")  # admin prints everything
    assert client.get(f"/quote/{theirs['id']}/documents/packing_list").status_code == 200


def test_signed_out_visitors_are_sent_to_sign_in(client):
    quote = make_quote(client)
    response = client.get(f"/quote/{quote['id']}/documents/quotation.pdf")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert client.get("/document-assets/images/logo.png").status_code == 302
    response = client.get(f"/api/v1/quote/{quote['id']}/documents/quotation")
    assert response.status_code == 401


def test_the_record_page_links_to_the_documents_the_user_may_print(client):
    quote = make_quote(client)
    sign_in(client, "rep")
    page = html(client.get(f"/quote/{quote['id']}"))
    base = f"/quote/{quote['id']}/documents"
    assert f'href="{base}/quotation" target="_blank"' in page
    assert f'href="{base}/quotation.pdf" download' in page
    assert 'title="The offer sent to the buyer">Quotation</a>' in page
    assert "packing_list" not in page and "probe" in page


def test_template_mistakes_while_printing_are_422_naming_the_template_line(client):
    sign_in(client, "boss")
    escape = make_quote(client, subject="escape")
    response = client.get(f"/quote/{escape['id']}/documents/probe")
    assert response.status_code == 422
    assert "site/documents/probe.html:3:" in html(response)
    assert "__class__" in html(response) and "unsafe" in html(response)
    repeat = make_quote(client, subject="repeat")
    response = client.get(f"/api/v1/quote/{repeat['id']}/documents/probe?format=pdf",
                          headers=token(client, "boss"))
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "document_failed"
    assert "site/documents/probe.html:6:" in error["message"]
    assert "repeating a text or list" in error["message"]
    # nothing was audited for the failed prints
    entries, _ = client.world.service.history(SYSTEM, "quote", repeat["id"])
    assert [e["action"] for e in entries] == ["create"]


# ---------------------------------------------------------------- API and audit

def test_the_api_serves_documents_as_pdf_or_html(client):
    quote = make_quote(client)
    headers = token(client, "rep")
    base = f"/api/v1/quote/{quote['id']}/documents"
    listed = client.get(base, headers=headers).get_json()["data"]
    assert listed == [{"name": "probe", "label": "Probe", "formats": ["html", "pdf"]},
                      {"name": "quotation", "label": "Quotation", "formats": ["html", "pdf"]}]
    response = client.get(f"{base}/quotation", headers=headers)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert quote["number"] in pdf_text(response.data)
    response = client.get(f"{base}/quotation?format=html&locale=zh", headers=headers)
    assert response.mimetype == "text/html" and "<h1>报价单 " in html(response)
    response = client.get(f"{base}/quotation?format=doc", headers=headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["fields"] == {"format": ["must be html or pdf"]}
    assert client.get(f"{base}/packing_list", headers=headers).status_code == 403
    assert client.get(f"{base}/nothing", headers=headers).status_code == 404
    theirs = make_quote(client, owner="other")
    assert client.get(f"/api/v1/quote/{theirs['id']}/documents",
                      headers=headers).status_code == 404
    assert client.get(f"/api/v1/quote/{theirs['id']}/documents/quotation",
                      headers=headers).status_code == 404


def test_printing_is_audited_on_the_record(client):
    quote = make_quote(client)
    sign_in(client, "rep")
    client.get(f"/quote/{quote['id']}/documents/quotation")
    client.get(f"/quote/{quote['id']}/documents/quotation.pdf")
    client.get(f"/quote/{quote['id']}/documents/packing_list")  # refused: not audited
    entries, _ = client.world.service.history(SYSTEM, "quote", quote["id"])
    rep = client.world.users.by_username("rep")
    assert [(e["action"], e["user"]) for e in entries] == [
        ("print:quotation", rep), ("print:quotation", rep), ("create", None)]
    page = html(client.get(f"/quote/{quote['id']}"))
    assert page.count("printed Quotation") == 2
    post(client, "/logout", {}, "/quote")
    sign_in(client, "boss")
    log = html(client.get(f"/admin/audit?entity=quote&record={quote['id']}"))
    assert log.count("printed: Quotation") == 2


# ---------------------------------------------------------------- checking the configuration

BROKEN = {
    "documents/typo.yaml": """
        document: typo
        entity: qoute
        template: templates/good.html
        roles: [rep, sales]
        """,
    "documents/child.yaml": """
        document: child
        entity: quote_line
        template: templates/missing.html
        """,
    "documents/outside.yaml": """
        document: outside
        entity: quote
        template: ../app.html
        """,
    "documents/fields.yaml": """
        document: fields
        entity: quote
        template: templates/fields.html
        """,
    "documents/shape.yaml": """
        document: shape
        entity: quote
        template: templates/good.html
        paper: a3
        """,
    "documents/templates/good.html": "<p>{{ record.subject }}</p>\n",
    "documents/templates/fields.html": """
        <p>{{ record.subject }} {{ record.custmer }}</p>
        <p>{{ record.customer.name }} {{ record.customer.nmae }} {{ record.owner.name }}</p>
        {% for line in record.lines %}
        <p>{{ line.prise | money }} {{ line.product.hs_code }} {{ line.product.hs }}</p>
        {% endfor %}
        <p>{{ label(record, 'totl') }} {{ show(record, 'total') }} {{ label('quote_line', 'qty') }}</p>
        <p>{{ record.__class__ }}</p>
        """,
    "documents/templates/syntax.html": "<p>\n{% if record.subject %}\n<p>{{ record.subject }</p>\n",
    "documents/templates/filter.html": "<p>\n{{ record.total | mony }}\n</p>\n",
    "documents/templates/include.html": "{% extends 'layout.html' %}\n{% include 'base.html' %}\n",
}


def test_document_and_template_problems_are_reported_with_their_place(tmp_path):
    files = {k: v for k, v in SITE.items() if not k.startswith("documents/")}
    site = write_site(tmp_path / "site", {**files, **BROKEN})
    assert problems_of(site, root=BARE_ROOT) == [
        ("documents/child.yaml", 2, 9, "child-entity"),
        ("documents/child.yaml", 3, 11, "template-missing"),
        ("documents/outside.yaml", 3, 11, "template-path"),
        ("documents/shape.yaml", 4, 8, "bad-value"),
        ("documents/templates/fields.html", 1, 1, "unknown-field"),
        ("documents/templates/fields.html", 2, 1, "unknown-field"),
        ("documents/templates/fields.html", 4, 1, "unknown-field"),
        ("documents/templates/fields.html", 4, 1, "unknown-field"),
        ("documents/templates/fields.html", 6, 1, "unknown-field"),
        ("documents/templates/fields.html", 6, 1, "unknown-field"),
        ("documents/templates/fields.html", 7, 1, "template-unsafe"),
        ("documents/templates/filter.html", 2, 1, "template-syntax"),
        ("documents/templates/include.html", 1, 1, "template-missing"),
        ("documents/templates/syntax.html", 3, 1, "template-syntax"),
        ("documents/typo.yaml", 2, 9, "unknown-entity"),
        ("documents/typo.yaml", 4, 14, "unknown-role"),
    ]


def test_template_problems_name_the_mistake(tmp_path):
    import engine
    files = {k: v for k, v in SITE.items() if not k.startswith("documents/")}
    site = write_site(tmp_path / "site", {**files, **BROKEN})
    with pytest.raises(engine.ConfigError) as caught:
        engine.load_registry(site=site, root=BARE_ROOT)
    messages = {p.message for p in caught.value.problems}
    for expected in (
            "document 'typo': unknown entity 'qoute' (did you mean 'quote'?)",
            "document 'typo': unknown role 'sales'",
            "template: no filter named 'mony' (did you mean 'money'?)",
            "template: 'quote' has no field 'custmer' (did you mean 'customer'?)",
            "template: 'customer' has no field 'nmae' (did you mean 'name'?)",
            "template: 'quote_line' has no field 'prise' (did you mean 'price'?)",
            "template: 'product' has no field 'hs'",
            "template: 'quote' has no field 'totl' (did you mean 'total'?)",
            "template: 'quote_line' has no field 'qty'",
            "template: '.__class__' reaches Python internals, which the sandbox refuses",
            "template 'layout.html' is in no documents/ folder"):
        assert expected in messages, (expected, sorted(messages))
    assert any(m.startswith("template syntax: unexpected '}'") for m in messages), messages


def test_templates_are_looked_up_from_the_highest_layer(tmp_path):
    site, pack = tmp_path / "site", tmp_path / "pack"
    for folder, text in ((site, "site {{ 1 + 1 }}"), (pack, "pack")):
        (folder / "templates").mkdir(parents=True)
        (folder / "templates" / "quotation.html").write_text(text)
    (pack / "templates" / "packing.html").write_text("{% extends 'base.html' %}")
    env = document_environment([site, pack])
    assert env.get_template("templates/quotation.html").render() == "site 2"
    assert Path(env.get_template("templates/packing.html").filename).parent == \
        pack / "templates"
    assert Path(env.get_template("base.html").filename).name == "base.html"  # the engine's


def test_crm_validate_prints_template_mistakes_at_their_line(tmp_path):
    from test_cli_config import crm
    files = {k: v for k, v in SITE.items() if not k.startswith("documents/")}
    site = write_site(tmp_path / "site", {
        **files, "documents/quotation.yaml": SITE["documents/quotation.yaml"],
        "documents/templates/quotation.html": "<h1>\n{{ record.number }\n</h1>\n"})
    result = crm("validate", "--site", str(site),
                 env_extra={"CRM_CONTENT_ROOT": str(BARE_ROOT)})
    assert result.returncode == 1
    assert re.fullmatch(r".*site/documents/templates/quotation\.html:2:1: error: template "
                        r"syntax: unexpected '}' \[template-syntax\]", result.stdout.strip())


def test_the_openapi_document_describes_the_documents(client):
    from openapi_spec_validator import validate
    spec = client.get("/api/v1/openapi.json", headers=token(client, "rep")).get_json()
    validate(spec)
    assert "/quote/{id}/documents/{name}" in spec["paths"]
    assert "/customer/{id}/documents" not in spec["paths"]  # it has no documents


def test_crm_serve_dev_reloads_when_a_template_is_saved(tmp_path):
    from web.devwatch import snapshot
    site = write_site(tmp_path / "site", {"documents/templates/quotation.html": "<p></p>\n",
                                          "documents/notes.txt": "not watched\n"})
    assert sorted(Path(p).name for p, _, _ in snapshot([site])) == ["app.yaml",
                                                                    "quotation.html"]


# ---------------------------------------------------------------- the sandbox's bounds

def test_a_symlink_out_of_the_documents_folder_is_not_served(client, tmp_path):
    folder = Path(client.world.registry.document_folders[0])
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"outside the documents folder")
    inner = folder / "images" / "inner.png"
    links = [folder / "images" / "secret.png", folder / "etc", inner]
    links[0].symlink_to(secret)
    links[1].symlink_to(tmp_path, target_is_directory=True)
    inner.symlink_to(folder / "images" / "logo.png")  # one staying inside is fine
    try:
        sign_in(client, "rep")
        assert client.get("/document-assets/images/secret.png").status_code == 404
        assert client.get("/document-assets/etc/secret.png").status_code == 404
        assert client.get("/document-assets/images/inner.png").data == png()
        assert find_asset([folder], "images/secret.png") is None
        assert find_asset([folder], "images/inner.png") == inner
    finally:
        for link in links:
            link.unlink()


def test_a_template_symlinked_out_of_the_documents_folder_is_not_included(tmp_path):
    site, outside = tmp_path / "documents", tmp_path / "outside"
    site.mkdir(), outside.mkdir()
    (outside / "secret.html").write_text("TOP SECRET")
    (site / "secret.html").symlink_to(outside / "secret.html")
    (site / "linked").symlink_to(outside, target_is_directory=True)
    (site / "page.html").write_text("inside")
    (site / "alias.html").symlink_to(site / "page.html")
    env = document_environment([site])
    assert env.from_string("{% include 'alias.html' %}").render() == "inside"
    for source in ("{% include 'secret.html' %}", "{% extends 'linked/secret.html' %}",
                   "{% include 'linked/secret.html' %}"):
        with pytest.raises(Exception) as caught:
            env.from_string(source).render()
        assert "TOP SECRET" not in str(caught.value)
        assert type(caught.value).__name__ == "TemplateNotFound"


def test_crm_validate_reports_symlinks_out_of_the_documents_folder(tmp_path):
    import engine
    site = write_site(tmp_path / "site", SITE)
    (tmp_path / "secret.html").write_text("TOP SECRET")
    (site / "documents" / "templates" / "secret.html").symlink_to(tmp_path / "secret.html")
    with pytest.raises(engine.ConfigError) as caught:
        engine.load_registry(site=site, root=BARE_ROOT)
    found = [p for p in caught.value.problems if p.code == "symlink-outside"]
    assert len(found) == 1 and found[0].path.endswith("documents/templates/secret.html")
    assert "not followed" in found[0].message


@pytest.mark.parametrize("source, refusal", [
    ("{{ '%0300000000d' % 1 }}", "a formatted text beyond"),
    ("{{ '%.300000000f' % 1 }}", "a formatted text beyond"),
    ("{{ '%*d' % (300000000, 1) }}", "a formatted text beyond"),
    ("{{ '{:0300000000}'.format(1) }}", "a formatted text beyond"),
    ("{{ '{:{w}}'.format(1, w=300000000) }}", "a formatted text beyond"),
    ("{{ '{x:0300000000}'.format_map({'x': 1}) }}", "a formatted text beyond"),
    ("{{ '%0300000000d'|format(1) }}", "a formatted text beyond"),
    ("{{ 'x'|center(300000000) }}", "'center' filter"),
    ("{{ ('a' * 100000)|replace('', 'b' * 3000) }}", "'replace' filter"),
    ("{{ ('a\n' * 50000)|indent(300) }}", "'indent' filter"),
    ("{{ ('a ' * 50000)|wordwrap(1, wrapstring='-' * 100) }}", "'wordwrap' filter"),
    ("{{ (['x' * 100000] * 100)|join }}", "'join' filter"),
    ("{{ ('x' * 100000)|join('y' * 100) }}", "'join' filter"),
    ("{{ ((10 ** 1000) ** 1000)|string|length }}", "a power beyond"),
    ("{{ (2 ** 1000) ** 200 }}", "a power beyond"),
    ("{% set a = 2 ** 1000 %}{% set a = a * a * a * a * a * a * a %}{{ a * a * a * a * a * a "
     "* a * a * a * a * a * a * a * a * a * a * a * a * a * a * a * a * a * a * a }}",
     "a product beyond"),
    ("{% set s = 'x' * 100000 %}{% set s = s + s + s + s + s + s + s + s + s + s %}{{ s + s }}",
     "joining texts or lists beyond"),
    ("{% set s = 'x' * 100000 %}" + "{% set s = s ~ s %}" * 40 + "{{ s|length }}",
     "a joined text beyond"),
    ("{{ '1e300000000'|number }}", "beyond 1000 digits"),
    ("{{ 1|money(places=300000000) }}", "decimals must be at most"),
])
def test_what_would_exhaust_memory_is_refused(source, refusal):
    env = document_environment([])
    with pytest.raises((SecurityError, ValueError)) as caught:
        render_bounded(env.from_string(source), {})
    assert refusal in str(caught.value)


def test_what_stays_small_still_renders():
    env = document_environment([])
    source = ("{{ '%05d' % 42 }}|{{ '{:>8}'.format('ab') }}|{{ 'ab'|center(6) }}|"
              "{{ 'a-b'|replace('-', '+') }}|{{ ['a', 'b']|join(', ') }}|{{ 2 ** 10 }}|"
              "{{ 'x' * 3 + 'y' }}|{{ '%s=%d'|format('n', 3) }}|{{ 'abcdefghij'|truncate(5, end='.', leeway=0) }}"
              "|{{ 1234.5|money }}|{{ 'a' ~ 1 ~ 'b' }}")
    assert render_bounded(env.from_string(source), {}) == \
        "00042|      ab|  ab  |a+b|a, b|1024|xxxy|n=3|abcd.|1,234.50|a1b"


def test_a_render_past_its_deadline_is_stopped(monkeypatch):
    import engine.documents.sandbox as sandbox
    env = document_environment([])
    # loops only: no attribute, call or operator to check the deadline at but the loop's steps
    endless = env.from_string("{% for i in range(100000) %}{% for j in range(100000) %}"
                              "{% endfor %}{% endfor %}")
    monkeypatch.setattr(sandbox, "RENDER_SECONDS", 0.2)
    with pytest.raises(SecurityError) as caught:
        render_bounded(endless, {})
    assert "took longer than 0.2 seconds" in str(caught.value)
    with render_deadline(-1), pytest.raises(SecurityError):
        env.from_string("{{ 'x'.upper() }}").render()
    assert env.from_string("{{ 'x'.upper() }}").render() == "X"  # no deadline outside a print
    monkeypatch.setattr(sandbox, "MAX_OUTPUT", 1_000)
    with pytest.raises(SecurityError) as caught:
        render_bounded(env.from_string("{% for i in range(100) %}{{ 'x' * 50 }}{% endfor %}"),
                       {})
    assert "a document beyond 1000 characters" in str(caught.value)


def test_a_refused_bound_is_422_naming_the_template_line(client):
    sign_in(client, "boss")
    for subject, refusal in (("bomb", "center&#39; filter making a text beyond"),
                             ("bomb format", "a formatted text beyond")):
        quote = make_quote(client, subject=subject)
        response = client.get(f"/quote/{quote['id']}/documents/probe")
        assert response.status_code == 422
        assert "site/documents/probe.html:12:" in html(response) and refusal in html(response)
