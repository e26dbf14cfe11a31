"""The lines editor of the generated forms, and the related lists of a record page."""

import re
import shutil
from decimal import Decimal
from html.parser import HTMLParser

import pytest

from engine.errors import ValidationFailed

from conftest import RECORDS_SITE, World
from engine.records.access import SYSTEM
from test_web_ui import csrf_of, html, post, sign_in
from web import create_app


@pytest.fixture
def ui(world, monkeypatch):
    monkeypatch.setenv("CRM_SECRET_KEY", "test-secret-key")
    for name, role in (("rep", "rep"), ("rep2", "rep"), ("viewer", "viewer"), ("boss", "manager")):
        world.users.create(name, f"pw-{name}", [role])
    client = create_app(world.registry, world.engine).test_client()
    client.world = world
    return client


def caller(client, username):
    users = client.world.users
    return users.caller(users.by_username(username))


class FormReader(HTMLParser):
    """What a browser without JavaScript submits from the form posting to `action`: its
    controls' names and values (checked boxes, selected options), none from a <template>."""

    def __init__(self, action: str):
        super().__init__()
        self.action, self.inside, self.template = action, False, 0
        self.data: dict[str, list[str]] = {}
        self._select = None  # (name, multiple, options, chosen) of the open <select>
        self._option = None
        self._textarea = None

    def add(self, name, value):
        self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("action") == self.action
        elif tag == "template":
            self.template += 1
        if not self.inside or self.template or "disabled" in a:
            return
        if tag == "input" and a.get("name"):
            if a.get("type") in ("checkbox", "radio"):
                if "checked" in a:
                    self.add(a["name"], a.get("value", "on"))
            else:
                self.add(a["name"], a.get("value", ""))
        elif tag == "select" and a.get("name"):
            self._select = (a["name"], "multiple" in a, [], [])
        elif tag == "option" and self._select is not None:
            self._select[2].append(a.get("value", ""))
            if "selected" in a:
                self._select[3].append(a.get("value", ""))
        elif tag == "textarea" and a.get("name"):
            self._textarea = [a["name"], ""]

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "template":
            self.template -= 1
        elif tag == "select" and self._select is not None:
            name, multiple, options, chosen = self._select
            for value in chosen or ([] if multiple or not options else options[:1]):
                self.add(name, value)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.add(*self._textarea)
            self._textarea = None


def form_of(client, path: str, action: str | None = None) -> dict[str, list[str]]:
    """The form posting to `action` (default `path`) on the page at `path`, as submitted."""
    reader = FormReader(action or path)
    reader.feed(html(client.get(path)))
    assert reader.data, f"no form posting to {action or path} on {path}"
    return reader.data


def submit(client, path: str, data: dict[str, list[str]]):
    return client.post(path, data=data)


def row_keys(data: dict, field: str = "lines") -> list[str]:
    """The row numbers of a lines editor's rows, in form order."""
    keys = {m.group(1) for name in data if (m := re.fullmatch(rf"{field}\[(\d+)\]\.id", name))}
    return sorted(keys, key=int)


def fill(data: dict, key: str, **values) -> None:
    for name, value in values.items():
        data[f"lines[{key}].{name}"] = [value]


def cell(page: str, control_id: str) -> str:
    """The table cell holding the control `control_id` of a lines editor."""
    at = page.index(f'id="{control_id}"')
    return page[page.rindex("<td", 0, at):page.index("</td>", at)]


def deal_with_lines(client, owner="rep", lines=2, title="Lines deal"):
    rep = caller(client, owner)
    product = client.world.service.create(SYSTEM, "product", {"name": "Pump"})
    account = client.world.service.create(rep, "account", {"name": "Acme"})
    # as the engine, since the line's code may be read-only for the owner's role
    deal = client.world.service.create(SYSTEM, "deal", {
        "title": title, "account": account["id"], "owner": rep.user_id,
        "lines": [{"product": product["id"], "quantity": i + 1, "unit_price": "10",
                   "code": f"L-{i}"} for i in range(lines)]})
    return deal, product, account


# ------------------------------------------------------------------ lines editor

def test_create_a_deal_with_two_lines_through_the_form(ui):
    sign_in(ui, "rep")
    product = ui.world.service.create(SYSTEM, "product", {"name": "Pump"})
    account = ui.world.service.create(caller(ui, "rep"), "account", {"name": "Acme"})
    data = form_of(ui, "/deal/new")
    keys = row_keys(data)
    assert len(keys) == 3  # empty rows for new lines, for use without JavaScript
    assert data["lines[0].quantity"] == ["1"]  # the field's default, shown
    page = html(ui.get("/deal/new"))
    assert '<template class="line-template">' in page and 'name="lines[__row__].product"' in page
    assert "Add line" in page and 'name="lines[0].total"' not in page  # computed: no input
    data.update(title=["Two lines"], account=[str(account["id"])])
    fill(data, keys[0], product=str(product["id"]), quantity="2", unit_price="10.50")
    fill(data, keys[1], product=str(product["id"]), quantity="", unit_price="4",
         discount="50")
    response = submit(ui, "/deal/new", data)  # the third row is left as it was: ignored
    assert response.status_code == 302, html(response)
    deal_id = int(response.headers["Location"].rsplit("/", 1)[1])
    deal = ui.world.service.get(caller(ui, "rep"), "deal", deal_id)
    assert [(line["quantity"], line["unit_price"], line["total"]) for line in deal["lines"]] == [
        (2, Decimal("10.50"), Decimal("21.00")),
        (1, Decimal("4.00"), Decimal("2.00"))]  # an empty quantity takes the default
    assert deal["lines_total"] == Decimal("23.00")
    page = html(ui.get(f"/deal/{deal_id}"))
    assert "<dt>Lines total</dt><dd>23.00</dd>" in page


def test_edit_add_and_remove_lines_keeping_their_ids(ui):
    sign_in(ui, "rep")
    deal, product, _ = deal_with_lines(ui, lines=3)
    first, second, third = deal["lines"]
    path = f"/deal/{deal['id']}"
    data = form_of(ui, path)
    keys = row_keys(data)
    assert [data[f"lines[{k}].id"] for k in keys[:3]] == [[str(first["id"])],
                                                         [str(second["id"])],
                                                         [str(third["id"])]]
    assert [data[f"lines[{k}].id"] for k in keys[3:]] == [[""]] * 3
    fill(data, keys[0], quantity="5")                     # edit one
    data[f"lines[{keys[1]}].remove"] = ["true"]           # remove one
    fill(data, keys[3], product=str(product["id"]), unit_price="7", code="NEW")  # add one
    response = submit(ui, path, data)
    assert response.status_code == 302, html(response)

    stored = ui.world.service.get(caller(ui, "rep"), "deal", deal["id"])
    lines = stored["lines"]
    assert [line["id"] for line in lines[:2]] == [first["id"], third["id"]]
    assert lines[2]["id"] not in (first["id"], second["id"], third["id"])
    assert [(line["quantity"], line["code"]) for line in lines] == [
        (5, "L-0"), (3, "L-2"), (1, "NEW")]
    assert stored["lines_total"] == Decimal("87.00") == Decimal("50") + 30 + 7
    assert stored["version"] == 2

    page = html(ui.get(path))
    assert "<dt>Lines total</dt><dd>87.00</dd>" in page
    latest = page.split("History")[1].split("<li>")[1]  # newest first
    assert "changed" in latest and "<td>Lines</td>" in latest
    assert "<td>Lines total</td><td>60.00</td><td>87.00</td>" in latest
    assert "NEW" in latest

    # a form without the editor (another client) leaves the lines alone
    response = post(ui, path, {"title": "Renamed", "account": str(stored["account"]),
                               "version": "2"}, path)
    assert response.status_code == 302
    again = ui.world.service.get(caller(ui, "rep"), "deal", deal["id"])
    assert again["title"] == "Renamed" and again["lines"] == lines


def test_an_invalid_line_shows_its_error_next_to_it_and_nothing_is_written(ui):
    sign_in(ui, "rep")
    deal, product, _ = deal_with_lines(ui, lines=2)
    path = f"/deal/{deal['id']}"
    data = form_of(ui, path)
    keys = row_keys(data)
    data["title"] = ["Changed title"]
    data[f"lines[{keys[0]}].remove"] = ["true"]
    fill(data, keys[1], quantity="3")
    # the service names this line lines[1] (the first row is removed, the third left empty)
    fill(data, keys[3], product=str(product["id"]), quantity="0", unit_price="1")
    response = submit(ui, path, data)
    assert response.status_code == 422
    page = html(response)
    assert "must be at least 1" in cell(page, f"f-lines-{keys[3]}-quantity")
    assert "must be at least 1" not in cell(page, f"f-lines-{keys[1]}-quantity")
    assert "Please correct the marked fields." in page.split('class="record-form"')[0]
    assert "lines[" not in page.split('class="record-form"')[0]  # no raw service key shown
    # the rows come back as they were typed, the removed one still marked
    again = FormReader(path)
    again.feed(page)
    assert again.data[f"lines[{keys[0]}].remove"] == ["true"]
    assert again.data[f"lines[{keys[1]}].quantity"] == ["3"]
    assert again.data[f"lines[{keys[3]}].quantity"] == ["0"]
    assert again.data["title"] == ["Changed title"]
    stored = ui.world.service.get(caller(ui, "rep"), "deal", deal["id"])
    assert stored["version"] == 1 and stored["title"] == "Lines deal"
    assert [line["quantity"] for line in stored["lines"]] == [1, 2]

    # a value the database refuses (a code another line has) is named by its line too
    fill(again.data, keys[3], quantity="1", code="L-1")
    again.data[f"lines[{keys[0]}].remove"] = []
    response = submit(ui, path, again.data)
    assert response.status_code == 422
    row = html(response).split(f'data-row="{keys[3]}"')[1].split("</tr>")[0]
    assert "must be unique" in row


def test_a_new_record_with_an_invalid_line_is_not_created_and_errors_are_translated(ui):
    sign_in(ui, "rep")
    post(ui, "/locale", {"locale": "zh"}, "/deal/new")
    account = ui.world.service.create(caller(ui, "rep"), "account", {"name": "Acme"})
    data = form_of(ui, "/deal/new")
    keys = row_keys(data)
    data.update(title=["Bad"], account=[str(account["id"])])
    fill(data, keys[1], quantity="2")  # no product, no price
    response = submit(ui, "/deal/new", data)
    assert response.status_code == 422
    page = html(response)
    assert "添加明细行" in page and "删除" in page
    assert "必填" in cell(page, f"f-lines-{keys[1]}-product")
    assert "必填" in cell(page, f"f-lines-{keys[1]}-unit_price")
    assert f'data-row="{keys[1]}">' in page  # shown again as typed, not as an empty row
    assert f'data-row="{keys[0]}"' not in page  # the rows left empty were ignored
    assert ui.world.service.list(caller(ui, "rep"), "deal").total == 0


def test_a_line_field_the_role_may_not_write_is_not_offered(tmp_path, database_url,
                                                            monkeypatch):
    site = tmp_path / "site"
    shutil.copytree(RECORDS_SITE, site)
    roles = (site / "roles.yaml").read_text(encoding="utf-8")
    (site / "roles.yaml").write_text(roles + """
  clerk:
    entities:
      account: {read: all, create: true, update: all}
      deal: {read: all, create: true, update: all}
      product: {read: all}
    fields:
      deal_line.code: read
      deal_line.discount: hidden
""", encoding="utf-8")
    world = World(database_url, site=site)
    try:
        monkeypatch.setenv("CRM_SECRET_KEY", "test-secret-key")
        world.users.create("clerk", "pw-clerk", ["clerk"])
        client = create_app(world.registry, world.engine).test_client()
        client.world = world
        sign_in(client, "clerk")
        deal, product, _ = deal_with_lines(client, owner="clerk", lines=1)
        path = f"/deal/{deal['id']}"
        page = html(client.get(path))
        form = page.split('class="record-form"')[1]
        assert 'name="lines[0].quantity"' in form and 'name="lines[0].code"' not in form
        assert "L-0" in form  # the code is shown, not offered
        assert "Discount" not in page and 'name="lines[0].discount"' not in form
        assert 'name="lines[__row__].code"' not in form
        # a code sent anyway is not read
        data = form_of(client, path)
        key = row_keys(data)[0]
        fill(data, key, quantity="4", code="CHANGED")
        assert submit(client, path, data).status_code == 302
        line = world.service.get(SYSTEM, "deal", deal["id"])["lines"][0]
        assert (line["quantity"], line["code"]) == (4, "L-0")
        # and through the record service (the JSON API) it is refused by name
        clerk = world.users.caller(world.users.by_username("clerk"))
        current = world.service.get(clerk, "deal", deal["id"])
        with pytest.raises(ValidationFailed) as refused:
            world.service.update(clerk, "deal", deal["id"], {"lines": [
                {"id": line["id"], "quantity": 4, "code": "CHANGED"}]}, current["version"])
        assert refused.value.fields == {"lines[0].code": ["is read-only"]}
    finally:
        world.engine.dispose()


def test_the_picker_of_a_line_field_searches_its_target(ui):
    sign_in(ui, "rep")
    ui.world.service.create(SYSTEM, "product", {"name": "Pump"})
    ui.world.service.create(SYSTEM, "product", {"name": "Valve"})
    found = ui.get("/deal/choices/lines.product?q=pum")
    assert found.status_code == 200
    assert [item["title"] for item in found.json["data"]] == ["Pump"]
    assert ui.get("/deal/choices/lines.unit_price").status_code == 404
    assert ui.get("/deal/choices/nothing.product").status_code == 404
    assert ui.get("/deal/choices/lines.total").status_code == 404


def test_markup_in_a_line_is_shown_as_text(ui):
    sign_in(ui, "rep")
    rep = caller(ui, "rep")
    product = ui.world.service.create(SYSTEM, "product", {"name": "<b>Pump</b>"})
    account = ui.world.service.create(rep, "account", {"name": "Acme"})
    deal = ui.world.service.create(rep, "deal", {
        "title": '<img src=x onerror="alert(1)">', "account": account["id"],
        "lines": [{"product": product["id"], "unit_price": "1",
                   "code": "<script>alert(1)</script>"}]})
    page = html(ui.get(f"/deal/{deal['id']}"))
    assert "<script>alert(1)</script>" not in page and "<b>Pump</b>" not in page
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in page  # the editor's input
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>" in page  # the read-only table
    account_page = html(ui.get(f"/account/{account['id']}"))
    assert "<img src=x" not in account_page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in account_page  # related list


# ------------------------------------------------------------------ related lists

def test_an_account_lists_its_deals_newest_first_with_a_count_and_links(ui):
    sign_in(ui, "rep")
    rep, boss = caller(ui, "rep"), caller(ui, "boss")
    account = ui.world.service.create(rep, "account", {"name": "Acme"})
    for i in range(12):
        ui.world.service.create(rep, "deal", {"title": f"Deal {i:02d}",
                                              "account": account["id"]})
    ui.world.service.create(boss, "deal", {"title": "Boss deal", "account": account["id"]})
    ui.world.service.create(rep, "note", {"body": "Call back", "account": account["id"]})

    page = html(ui.get(f"/account/{account['id']}"))
    deals = page.split('id="related-deal-account"')[1].split("</section>")[0]
    assert "<h2>Deal <span" in deals and "12 records" in deals  # only the rep's own deals
    titles = re.findall(r'<a href="/deal/\d+">([^<]+)</a>', deals)
    assert titles == [f"Deal {i:02d}" for i in range(11, 1, -1)]  # newest 10
    assert "Boss deal" not in page
    assert f'href="/deal?account={account["id"]}"' in deals
    assert f'href="/deal/new?account={account["id"]}"' in deals
    notes = page.split('id="related-note-account"')[1].split("</section>")[0]
    assert "1 record<" in notes and "Call back" not in notes  # a note's title is its id
    # an account refers to accounts too: that list is named by its field
    assert "<h2>Account · Parent <span" in page

    listing = html(ui.get(f"/deal?account={account['id']}"))
    assert "12 records" in listing and "Boss deal" not in listing

    manager = create_app(ui.world.registry, ui.world.engine).test_client()
    sign_in(manager, "boss")
    page = html(manager.get(f"/account/{account['id']}"))
    deals = page.split('id="related-deal-account"')[1].split("</section>")[0]
    assert "13 records" in deals and "Boss deal" in deals


def test_lists_a_user_may_not_read_are_not_shown(ui):
    sign_in(ui, "viewer")  # reads accounts, not deals or notes
    account = ui.world.service.create(caller(ui, "boss"), "account", {"name": "Acme"})
    ui.world.service.create(caller(ui, "boss"), "deal", {"title": "Hidden",
                                                        "account": account["id"]})
    page = html(ui.get(f"/account/{account['id']}"))
    assert 'id="related-deal-account"' not in page and "Hidden" not in page
    assert 'id="related-note-account"' not in page
    parents = page.split('id="related-account-parent"')[1].split("</section>")[0]
    assert "/account/new?" not in parents  # a viewer may not create accounts


def test_the_new_link_prefills_the_reference(ui):
    sign_in(ui, "rep")
    rep = caller(ui, "rep")
    account = ui.world.service.create(rep, "account", {"name": "Acme"})
    form = html(ui.get(f"/deal/new?account={account['id']}&title=Draft&lines_total=5"))
    assert f'<option value="{account["id"]}" selected>Acme</option>' in form
    assert 'value="Draft"' in form and 'name="lines_total"' not in form
    data = form_of(ui, f"/deal/new?account={account['id']}", "/deal/new")
    assert data["account"] == [str(account["id"])]
    data["title"] = ["From the account page"]
    response = submit(ui, "/deal/new", data)
    assert response.status_code == 302, html(response)
    deal = ui.world.service.list(rep, "deal").data[0]
    assert deal["account"] == account["id"]

    # an initial value is checked like any input when the form is saved
    other = ui.world.service.create(caller(ui, "boss"), "account", {"name": "Not yours"})
    form = html(ui.get(f"/deal/new?account={other['id']}"))
    assert "Not yours" not in form
    data = form_of(ui, f"/deal/new?account={other['id']}", "/deal/new")
    data["title"] = ["Sneaky"]
    response = submit(ui, "/deal/new", data)
    assert response.status_code == 422
    field = html(response).split('id="field-account"')[1].split('class="field')[0]
    assert "refers to a record that does not exist" in field
    assert ui.world.service.list(rep, "deal").total == 1
