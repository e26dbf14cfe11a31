"""List pages: the filter panel, filters that combine and stay on links, the explained 400,
and CSV / XLSX export of the filtered list as the signed-in user may read it."""

import csv
import datetime as dt
import io
import re

import pytest
from openpyxl import load_workbook

from tests.test_web_ui import html, sign_in
from web import create_app

ROW = re.compile(r'<tr>\s*<td><a href="/account/\d+">([^<]*)</a>')


@pytest.fixture
def ui(world, monkeypatch):
    monkeypatch.setenv("CRM_SECRET_KEY", "test-secret-key")
    users = {}
    for name, roles in (("rep", ["rep"]), ("rep2", ["rep"]), ("boss", ["manager"]),
                        ("admin", ["admin"])):
        users[name] = world.users.caller(world.users.create(name, f"pw-{name}", roles))
    client = create_app(world.registry, world.engine).test_client()
    client.world, client.users = world, users
    return client


def account(client, who, name, **fields):
    if fields.get("tier") == "a":
        fields.setdefault("tax_id", "T-1")
    # the admin writes every field (a rep may not set credit_limit or the hidden secret)
    return client.world.service.create(client.users["admin"], "account",
                                       {"name": name, "owner": client.users[who].user_id,
                                        **fields})


@pytest.fixture
def accounts(ui):
    account(ui, "rep", "Alpha", tier="a", credit_limit="100", active=True,
            founded="2001-05-01", secret="s-alpha")
    account(ui, "rep", "Beta", tier="b", credit_limit="40", active=False, founded="1999-01-01")
    account(ui, "rep", "=HYPERLINK(\"http://x\")", tier="b", credit_limit="60",
            notes="@SUM(A1)")
    account(ui, "rep2", "Gamma", tier="c", credit_limit="500")
    account(ui, "rep2", "Delta", tier="a", credit_limit="70", secret="s-delta")
    return ui


def names(page: str) -> list[str]:
    return [n.replace("&#34;", '"') for n in ROW.findall(page)]


def form_of(page: str) -> str:
    return page[page.index('<details class="filter-panel"'):page.index("</details>")]


# ---------------------------------------------------------------- the panel

def test_the_panel_offers_a_control_per_field_type(accounts):
    sign_in(accounts, "rep")
    page = html(accounts.get("/account"))
    panel = form_of(page)
    assert '<details class="filter-panel">' in panel  # closed: no filter is active
    assert 'method="get"' in panel and "csrf_token" not in panel
    tier = re.search(r'<select id="filter-tier" name="tier__in" multiple[^>]*>(.*?)</select>',
                     panel, re.S)
    assert tier and re.findall(r'<option value="(\w+)"', tier.group(1)) == ["a", "b", "c"]
    assert 'name="name__contains"' in panel and 'name="notes__contains"' in panel
    assert 'name="credit_limit__gte"' in panel and 'name="credit_limit__lte"' in panel
    assert re.search(r'type="date" name="founded__gte"', panel)
    assert re.search(r'type="datetime-local" name="last_contact__lte"', panel)
    active = re.search(r'<select id="filter-active" name="active">(.*?)</select>', panel, re.S)
    assert re.findall(r'value="(\w*)"', active.group(1)) == ["", "true", "false"]
    # a reference: the readable records of its target, as the form's select offers them
    parent = re.search(r'<select id="filter-parent" name="parent">(.*?)</select>', panel, re.S)
    assert "Alpha" in parent.group(1) and "Gamma" not in parent.group(1)  # rep2's account
    assert 'name="owner"' in panel and 'name="created_at__gte"' in panel
    # hidden from the rep, and fields a list cannot filter on, are not offered
    for absent in ("secret", "tags", "extra"):
        assert f'data-filter="{absent}"' not in panel
    boss = html(accounts.get("/account"))  # the same session: still the rep
    assert 'data-filter="secret"' not in form_of(boss)


def test_the_state_field_is_a_select_of_state_labels_in_the_users_language(accounts):
    sign_in(accounts, "boss")
    page = html(accounts.get("/deal", headers={"Accept-Language": "zh-CN"}))
    panel = form_of(page)
    stage = re.search(r'<select id="filter-stage" name="stage__in" multiple[^>]*>(.*?)</select>',
                      panel, re.S)
    assert re.findall(r'<option value="(\w+)">([^<]+)</option>', stage.group(1)) == [
        ("open", "Open"), ("won", "Won"), ("lost", "Lost")]
    assert "筛选" in panel and "应用筛选" in panel
    assert 'name="title__contains"' in panel and 'name="amount__gte"' in panel


# ---------------------------------------------------------------- filtering

def test_filters_combine_and_stay_on_sort_search_and_export_links(accounts):
    sign_in(accounts, "boss")
    response = accounts.get("/account?tier__in=a&tier__in=b&credit_limit__gte=50"
                            "&sort=credit_limit")
    page = html(response)
    assert response.status_code == 200
    assert names(page) == ['=HYPERLINK("http://x")', "Delta", "Alpha"]
    assert '<details class="filter-panel" open>' in page
    panel = form_of(page)
    assert re.search(r'<option value="a" selected>', panel)
    assert re.search(r'<option value="b" selected>', panel)
    assert not re.search(r'<option value="c" selected>', panel)
    assert 'name="credit_limit__gte" value="50"' in panel
    assert '<input type="hidden" name="sort" value="credit_limit">' in panel
    sort_link = re.search(r'<a href="(/account\?[^"]*sort=-credit_limit[^"]*)"', page).group(1)
    assert "tier__in=a,b" in sort_link.replace("%2C", ",") and "credit_limit__gte=50" in sort_link
    assert names(html(accounts.get(sort_link.replace("&amp;", "&")))) == [
        "Alpha", "Delta", '=HYPERLINK("http://x")']
    export = re.search(r'href="(/account/export\.csv\?[^"]*)"', page).group(1)
    assert export.replace("&amp;", "&").replace("%2C", ",") == \
        "/account/export.csv?tier__in=a,b&credit_limit__gte=50&sort=credit_limit"
    assert "Clear filters" in page and 'href="/account?sort=credit_limit"' in page
    # a boolean and a text filter
    assert names(html(accounts.get("/account?active=false"))) == ["Beta"]
    assert names(html(accounts.get("/account?name__contains=ph&sort=name"))) == ["Alpha"]
    assert names(html(accounts.get("/account?founded__gte=2000-01-01&founded__lte=2001-12-31"))) \
        == ["Alpha"]


def test_the_panels_empty_controls_mean_any_and_are_dropped_from_the_url(accounts):
    sign_in(accounts, "boss")
    response = accounts.get("/account?q=&sort=&name__contains=&credit_limit__gte=&"
                            "credit_limit__lte=80&active=")
    assert response.status_code == 302
    assert response.headers["Location"] == "/account?credit_limit__lte=80"
    assert sorted(names(html(accounts.get(response.headers["Location"])))) == [
        '=HYPERLINK("http://x")', "Beta", "Delta"]


def test_filters_no_control_shows_are_kept_when_the_panel_is_applied(accounts):
    sign_in(accounts, "boss")
    panel = form_of(html(accounts.get("/account?credit_limit__lt=65&tier=b")))
    assert '<input type="hidden" name="credit_limit__lt" value="65">' in panel
    assert re.search(r'<option value="b" selected>', panel)  # tier=b shown in tier__in


def test_paging_links_keep_the_filters(ui):
    for number in range(53):
        account(ui, "rep", f"Acc {number:02d}", tier="b" if number % 2 else "c")
    sign_in(ui, "rep")
    page = html(ui.get("/account?tier__in=b,c&name__contains=acc"))
    assert len(names(page)) == 50
    next_url = re.search(r'<a rel="next" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "tier__in=b" in next_url and "name__contains=acc" in next_url
    rest = html(ui.get(next_url))
    assert names(rest) == ["Acc 50", "Acc 51", "Acc 52"]
    # more records than a select should list: the reference filter is the forms' picker
    panel = form_of(page)
    assert 'data-url="/account/filter-choices/parent"' in panel
    assert 'name="parent" class="picker-id"' in panel and "forms.js" in page
    found = ui.get("/account/filter-choices/parent?q=Acc 07").get_json()["data"]
    assert [r["title"] for r in found] == ["Acc 07"]
    assert ui.get("/account/filter-choices/name").status_code == 404


def test_a_value_that_does_not_parse_is_an_explained_400(accounts):
    sign_in(accounts, "rep")
    response = accounts.get("/account?tier=a&credit_limit__gte=lots")
    page = html(response)
    assert response.status_code == 400
    assert "Credit limit ≥" in page and "“lots” must be a number" in page
    assert '<a href="/account">Back to the unfiltered list</a>' in page
    zh = html(accounts.get("/account?credit_limit__gte=lots",
                           headers={"Accept-Language": "zh-CN"}))
    assert "无法应用筛选条件" in zh and "必须是数字" in zh and "返回未筛选的列表" in zh
    hidden = accounts.get("/account?secret__contains=s")
    assert hidden.status_code == 400
    assert "is not a field you can filter on" in html(hidden)
    assert "must be one of: a, b, c" in html(accounts.get("/account?tier__in=a,z"))
    assert accounts.get("/account?founded__gte=01/05/2001").status_code == 400
    assert accounts.get("/account?active__gt=true").status_code == 400
    assert accounts.get("/account?sort=nope").status_code == 400  # not a filter: still said
    assert accounts.get("/account/export.csv?credit_limit__gte=lots").status_code == 400


# ---------------------------------------------------------------- export

def read_csv(response):
    raw = response.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    return rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]


def test_csv_export_has_the_filtered_readable_rows_with_formulas_neutralised(accounts):
    sign_in(accounts, "boss")
    response = accounts.get("/account/export.csv?tier__in=a,b&credit_limit__gte=50"
                            "&sort=-credit_limit")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    today = dt.date.today().isoformat()
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="account-{today}.csv"'
    header, rows = read_csv(response)
    assert header[:5] == ["id", "version", "owner", "created_at", "updated_at"]
    assert "Name" in header and "Credit limit" in header and "Secret" not in header
    assert "secret" not in header
    assert [r["Name"] for r in rows] == ["Alpha", "Delta", '\'=HYPERLINK("http://x")']
    assert rows[2]["Notes"] == "'@SUM(A1)"
    assert rows[0]["Credit limit"] == "100.00" and rows[0]["Tier"] == "a"
    zh, _ = read_csv(accounts.get("/account/export.csv", headers={"Accept-Language": "zh"}))
    assert zh[0] == "id"


def test_search_selects_the_exported_rows_and_every_page_is_exported(ui):
    for number in range(520):
        account(ui, "rep", f"Bulk {number:03d}", employees=number)
    account(ui, "rep", "Other")
    sign_in(ui, "rep")
    _, rows = read_csv(ui.get("/account/export.csv?q=bulk&sort=-employees"))
    assert len(rows) == 520
    assert [r["Name"] for r in rows[:2]] == ["Bulk 519", "Bulk 518"]
    assert rows[-1]["Name"] == "Bulk 000"


def test_xlsx_export_matches_and_has_no_formulas(accounts):
    sign_in(accounts, "boss")
    response = accounts.get("/account/export.xlsx?tier__in=b")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert re.search(r'filename="account-\d{4}-\d{2}-\d{2}\.xlsx"',
                     response.headers["Content-Disposition"])
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    header = [c.value for c in sheet[1]]
    assert "Secret" not in header and "secret" not in header
    column = header.index("Name") + 1
    values = sorted(sheet.cell(r, column).value for r in range(2, sheet.max_row + 1))
    assert values == ['\'=HYPERLINK("http://x")', "Beta"]
    for r in range(2, sheet.max_row + 1):
        assert sheet.cell(r, column).data_type == "s"


def test_a_rep_exports_only_their_own_records_and_never_a_hidden_field(accounts):
    sign_in(accounts, "rep")
    header, rows = read_csv(accounts.get("/account/export.csv"))
    assert sorted(r["Name"] for r in rows) == ['\'=HYPERLINK("http://x")', "Alpha", "Beta"]
    assert "Secret" not in header
    assert all("s-alpha" not in value for r in rows for value in r.values())
    admin = create_app(accounts.world.registry, accounts.world.engine).test_client()
    sign_in(admin, "admin")
    header, rows = read_csv(admin.get("/account/export.csv"))
    assert len(rows) == 5 and "Secret" in header  # the admin may read it


def test_signed_out_visitors_are_sent_to_sign_in(accounts):
    for path in ("/account?tier=a", "/account/export.csv", "/account/export.xlsx?tier=a",
                 "/account/filter-choices/parent"):
        response = accounts.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")


def test_the_list_page_links_to_both_exports(accounts):
    sign_in(accounts, "rep")
    page = html(accounts.get("/account?q=alpha"))
    assert 'href="/account/export.csv?q=alpha"' in page
    assert 'href="/account/export.xlsx?q=alpha"' in page
    assert "Export CSV" in page and "Export XLSX" in page
