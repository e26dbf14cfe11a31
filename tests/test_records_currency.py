"""Money in several currencies: rates by day, reports converted into the base currency in the
database (with the rates used and the amounts left over), rate maintenance by CLI and API,
currency codes checked at load time and on every write, amounts shown with their code."""

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import Workbook

import engine
from conftest import BARE_ROOT, FIXTURES, World, problems_of
from engine.errors import BadRequest, ValidationFailed
from engine.records.currency import ExchangeRates
from engine.records.dashboards import dashboard_data
from engine.records.reports import run_report

REPO = Path(__file__).resolve().parents[1]
SITE = FIXTURES / "sites" / "currency"
TODAY = dt.datetime.now(dt.timezone.utc).date()


@pytest.fixture
def w(database_url):
    world = World(database_url, site=SITE)
    world.rates = ExchangeRates(world.registry, world.engine, world.service.schema)
    world.admin = world.user("boss", "admin")
    yield world
    world.engine.dispose()


@pytest.fixture
def sales(w):
    """Two clients' sales in four currencies; rates for USD (two days) and EUR, none for JPY."""
    w.rates.set_many([{"currency": "USD", "day": "2026-01-01", "rate": "7.1"},
                      {"currency": "usd", "day": "2026-02-01", "rate": 7.2},
                      {"currency": "EUR", "day": "2026-01-01", "rate": "7.8"},
                      {"currency": "USD", "day": "2027-01-01", "rate": "9.9"}])  # after all
    a = w.service.create(w.admin, "client", {"name": "A"})
    b = w.service.create(w.admin, "client", {"name": "B"})
    plan = [(a, "USD", "100", "2026-01-15", "5"),   # 7.1: the latest rate on or before
            (a, "USD", "10", "2026-02-15", None),   # 7.2
            (a, "CNY", "50", "2025-02-15", None),   # the base currency: as it is
            (b, "JPY", "1000", "2026-02-15", None),  # no JPY rate at all
            (b, "EUR", "10", "2026-02-15", "2")]
    made = [w.service.create(w.admin, "sale", {
        "title": f"s{i}", "client": client["id"], "currency": code, "amount": amount,
        "signed_on": day, "fee": fee}) for i, (client, code, amount, day, fee) in enumerate(plan)]
    return a, b, made


def test_a_report_converts_each_row_at_the_rate_of_its_day_and_lists_the_rates(w, sales):
    a, b, _ = sales
    result = run_report(w.service, w.admin, "sales_by_client")
    assert [c.get("currency") for c in result["columns"]] == \
        [None, None, "CNY", "CNY", "CNY", "USD", "CNY", None]
    # A: 100 * 7.1 + 10 * 7.2 + 50 = 832; B has yen without a rate: no total, never a guess
    assert result["rows"] == [[a["id"], 3, 832.0, 277.333333, 710.0, 5.0, 0.0, 277.333333],
                              [b["id"], 2, None, None, None, 2.0, 0.0, None]]
    currency = result["currency"]
    assert currency["base"] == "CNY"
    assert currency["measures"] == {
        "total": {"currency": "CNY", "converted": True},
        "average": {"currency": "CNY", "converted": True},
        "big_total": {"currency": "CNY", "converted": True},
        "fees": {"currency": "USD", "converted": False},
        "paid": {"currency": "CNY", "converted": True}}
    totals = [r for r in currency["rates"] if r["measure"] == "total"]
    assert sorted(totals, key=lambda r: r["currency"]) == [
        {"measure": "total", "group": [b["id"]], "currency": "EUR", "rate_min": "7.8",
         "rate_max": "7.8", "records": 1, "from": "2026-02-15", "to": "2026-02-15"},
        {"measure": "total", "group": [a["id"]], "currency": "USD", "rate_min": "7.1",
         "rate_max": "7.2", "records": 2, "from": "2026-01-15", "to": "2026-02-15"}]
    # a measure's `where` narrows its rates too: only the 100 USD sale is >= 100
    assert [(r["currency"], r["rate_min"], r["rate_max"], r["records"])
            for r in currency["rates"] if r["measure"] == "big_total"] == [("USD", "7.1", "7.1", 1)]
    assert [u for u in currency["unconvertible"] if u["measure"] == "total"] == [
        {"measure": "total", "group": [b["id"]], "currency": "JPY", "records": 1,
         "amount": "1000.00", "reason": "no_rate"}]


def test_a_converted_total_is_given_to_the_cent(w):
    w.rates.set_many([{"currency": "USD", "day": "2026-01-01", "rate": "7.123457"}])
    a = w.service.create(w.admin, "client", {"name": "A"})
    for amount in ("10.01", "0.03"):
        w.service.create(w.admin, "sale", {"title": amount, "client": a["id"], "currency": "USD",
                                           "amount": amount, "signed_on": "2026-01-15"})
    row = run_report(w.service, w.admin, "sales_by_client")["rows"][0]
    assert row[2] == 71.52  # 10.04 * 7.123457 = 71.5195...: money in CNY, not 71.519508


def test_a_rate_entered_later_completes_the_report_and_a_rate_after_the_day_does_not(w, sales):
    b = sales[1]
    w.rates.set_many([{"currency": "JPY", "day": "2026-03-01", "rate": "0.05"}])  # too late
    result = run_report(w.service, w.admin, "sales_by_client")
    assert result["rows"][1][2] is None
    assert [u["currency"] for u in result["currency"]["unconvertible"]] == ["JPY"] * 3
    w.rates.set_many([{"currency": "JPY", "day": "2026-02-10", "rate": "0.0483"}])
    result = run_report(w.service, w.admin, "sales_by_client")
    # 1000 JPY * 0.0483 + 10 EUR * 7.8; `where: amount >= 100.0` reads the record's own amount
    assert result["rows"][1][:5] == [b["id"], 2, 126.3, 63.15, 48.3]
    assert result["currency"]["unconvertible"] == []
    total = run_report(w.service, w.admin, "sales_total")
    assert total["rows"] == [[958.3, 0.0, 0.0]]
    assert total["columns"][1] == {"name": "internal", "label": "Internal", "type": "money"}
    assert "internal" not in total["currency"]["measures"]  # declares no currency


def test_an_empty_currency_is_reported_and_an_empty_rate_date_falls_back_to_creation(w):
    w.rates.set_many([{"currency": "USD", "day": (TODAY - dt.timedelta(days=3)).isoformat(),
                       "rate": "7"},
                      {"currency": "USD", "day": (TODAY + dt.timedelta(days=3)).isoformat(),
                       "rate": "8"}])
    w.service.create(w.admin, "sale", {"title": "undated", "currency": "USD", "amount": "10"})
    total = run_report(w.service, w.admin, "sales_total")
    assert total["rows"] == [[70.0, 0.0, 0.0]]  # created today: the rate of three days ago
    w.service.create(w.admin, "sale", {"title": "no currency", "currency": None,
                                       "amount": "4"})
    total = run_report(w.service, w.admin, "sales_total")
    assert total["rows"] == [[None, 0.0, 0.0]]  # its rollup is 0: zero needs no rate
    assert total["currency"]["unconvertible"] == [
        {"measure": "total", "group": [], "currency": None, "records": 1, "amount": "4.00",
         "reason": "no_currency"}]


def test_a_rollup_in_its_record_currency_converts_like_a_money_field(w):
    w.rates.set_many([{"currency": "USD", "day": "2026-01-01", "rate": "7.1"}])
    sale = w.service.create(w.admin, "sale", {
        "title": "lined", "currency": "USD", "signed_on": "2026-01-20",
        "lines": [{"item": "a", "amount": "30"}, {"item": "b", "amount": "20"}]})
    assert sale["lines_total"] == 50
    total = run_report(w.service, w.admin, "sales_total")
    assert total["rows"] == [[0.0, 0.0, 355.0]]
    assert total["columns"][2]["currency"] == "CNY"
    assert [(r["measure"], r["currency"], r["rate_min"]) for r in total["currency"]["rates"]] \
        == [("lines", "USD", "7.1")]


def test_related_measures_and_dashboard_metrics_convert_too(w, sales):
    made = sales[2]
    rep = w.user("rep1", "rep")
    w.service.create(w.admin, "payment", {"sale": made[0]["id"], "currency_code": "usd",
                                          "paid": "20"})
    result = run_report(w.service, w.admin, "sales_by_client")
    assert result["rows"][0][6] == 144.0  # paid today: 20 USD at the February rate 7.2
    w.service.create(w.admin, "payment", {"sale": made[4]["id"], "currency_code": "GBP",
                                          "paid": "1"})
    result = run_report(w.service, w.admin, "sales_by_client")
    assert [row[6] for row in result["rows"]] == [144.0, None]  # no GBP rate
    metric = dashboard_data(w.service, w.admin, "money")["widgets"][1]
    assert metric["value"] is None  # the yen has no rate
    w.rates.set_many([{"currency": "JPY", "day": "2026-01-01", "rate": "0.05"}])
    assert dashboard_data(w.service, w.admin, "money")["widgets"][1]["value"] == "960.00"
    # row permissions apply before converting: the rep reads no sale
    assert dashboard_data(w.service, rep, "money")["widgets"][1]["value"] == "0.00"


def test_currency_values_are_checked_when_written(w, sales):
    made = sales[2]
    payment = w.service.create(w.admin, "payment", {"sale": made[0]["id"],
                                                    "currency_code": " eur ", "paid": "1"})
    assert payment["currency_code"] == "EUR"
    with pytest.raises(ValidationFailed) as caught:
        w.service.create(w.admin, "payment", {"sale": made[0]["id"], "currency_code": "XYZ",
                                              "paid": "1"})
    assert caught.value.fields == {
        "currency_code": ["must be an ISO 4217 currency code such as USD or CNY"]}
    with pytest.raises(ValidationFailed) as caught:
        w.service.create(w.admin, "sale", {"title": "t", "currency": "RMB", "amount": "1"})
    assert list(caught.value.fields) == ["currency"]


def test_rates_are_checked_all_or_nothing(w):
    w.rates.set_many([{"currency": "USD", "day": "2026-01-01", "rate": "7"}])
    with pytest.raises(ValidationFailed) as caught:
        w.rates.set_many([{"currency": "USD", "day": "2026-01-02", "rate": "7.2"},
                          {"currency": "CNY", "day": "2026-01-02", "rate": "1"},
                          {"currency": "RMB", "day": "2026-13-01", "rate": "0"},
                          {"currency": "EUR", "day": "2026-01-02", "rate": "1.00000000001"},
                          {"currency": "EUR", "day": "2026-01-02", "rate": "-1"},
                          "USD 7"])
    assert caught.value.fields == {
        "1.currency": ["is the base currency (CNY); its rate is always 1"],
        "2.currency": ["must be an ISO 4217 currency code such as USD (did you mean 'CNY'?)"],
        "2.day": ["must be a date (YYYY-MM-DD)"],
        "2.rate": ["must be a number greater than 0"],
        "3.rate": ["must have at most 10 decimal places"],
        "4.rate": ["must be a number greater than 0"],
        "5.rate": ["must be an object {currency, day, rate}"]}
    assert [(r["currency"], r["day"], r["rate"]) for r in w.rates.list()] == \
        [("USD", "2026-01-01", "7")]  # nothing of the refused set was written
    w.rates.set_many([{"currency": "USD", "day": "2026-01-01", "rate": "7.25"}])  # replaces
    assert w.rates.rate_on("USD", dt.date(2026, 5, 1)) == 7.25
    assert w.rates.rate_on("usd", dt.date(2025, 12, 31)) is None
    assert w.rates.rate_on("CNY", dt.date(2000, 1, 1)) == 1
    assert w.rates.delete("USD", "2026-01-01") and not w.rates.delete("USD", "2026-01-01")


def test_the_rate_lookup_walks_the_primary_key(w, sales):
    from engine.records.currency import Conversion
    sale = w.registry.entities["sale"]
    table = w.service.schema.entities["sale"]
    conversion = Conversion(w.service, sale, sale.fields["amount"], table)
    statement = sa.select(sa.func.sum(conversion.value)).select_from(table)
    sql = str(statement.compile(w.engine, compile_kwargs={"literal_binds": True}))
    with w.engine.connect() as conn:
        if w.engine.dialect.name == "sqlite":
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert re.search(r"SEARCH \w+ USING (COVERING )?INDEX sqlite_autoindex_"
                             r"crm_exchange_rate_1 \(base=\? AND currency=\? AND day<\?\)", plan)
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")  # a tiny table is scanned anyway
            plan = " ".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql))
            assert "Index Scan Backward using crm_exchange_rate_pkey" in plan \
                or "Index Only Scan Backward using crm_exchange_rate_pkey" in plan


# ---------------------------------------------------------------- the API and the UI

@pytest.fixture
def client(w, monkeypatch):
    from web import create_app
    monkeypatch.setenv("CRM_SECRET_KEY", "test-secret-key")
    w.users.create("chief", "pw-chief", ["admin"])
    w.users.create("rep", "pw-rep", ["rep"])
    app = create_app(w.registry, w.engine)
    test_client = app.test_client()

    def token(name):
        response = test_client.post("/api/v1/auth/token",
                                    json={"username": name, "password": f"pw-{name}"})
        return {"Authorization": f"Bearer {response.json['token']}"}
    test_client.auth = token
    return test_client


def test_the_exchange_rate_api(client):
    chief, rep = client.auth("chief"), client.auth("rep")
    body = {"data": [{"currency": "usd", "day": "2026-01-02", "rate": "7.1034"},
                     {"currency": "EUR", "day": "2026-01-02", "rate": 7.8}]}
    assert client.put("/api/v1/exchange-rates", json=body, headers=rep).status_code == 403
    response = client.put("/api/v1/exchange-rates", json=body, headers=chief)
    assert response.status_code == 200
    assert response.json["data"] == [
        {"currency": "USD", "day": "2026-01-02", "rate": "7.1034", "base": "CNY"},
        {"currency": "EUR", "day": "2026-01-02", "rate": "7.8", "base": "CNY"}]
    listed = client.get("/api/v1/exchange-rates?currency=USD", headers=rep)
    assert listed.status_code == 200 and listed.json["base"] == "CNY"
    assert [(r["currency"], r["day"], r["rate"]) for r in listed.json["data"]] == \
        [("USD", "2026-01-02", "7.1034")]
    assert listed.json["data"][0]["updated_at"].endswith("Z")
    on = client.get("/api/v1/exchange-rates/USD?on=2026-03-01", headers=rep)
    assert on.json == {"data": {"currency": "USD", "day": "2026-03-01", "rate": "7.1034",
                                "base": "CNY"}}
    assert client.get("/api/v1/exchange-rates/USD?on=2025-01-01", headers=rep).status_code == 404
    bad = client.put("/api/v1/exchange-rates", headers=chief, json={"data": [
        {"currency": "USD", "day": "2026-01-03", "rate": "7"},
        {"currency": "XXY", "day": "soon", "rate": "x"}]})
    assert bad.status_code == 422
    assert bad.json["error"]["fields"] == {
        "1.currency": ["must be an ISO 4217 currency code such as USD"],
        "1.day": ["must be a date (YYYY-MM-DD)"], "1.rate": ["must be a number greater than 0"]}
    assert client.put("/api/v1/exchange-rates", headers=chief, json={"data": {}}
                      ).status_code == 400
    assert client.get("/api/v1/exchange-rates?since=never", headers=rep).status_code == 400
    assert client.get("/api/v1/exchange-rates?limit=0", headers=rep).status_code == 400
    assert client.delete("/api/v1/exchange-rates/USD/2026-01-02", headers=rep).status_code == 403
    assert client.delete("/api/v1/exchange-rates/USD/2026-01-02", headers=chief).status_code == 204
    assert client.delete("/api/v1/exchange-rates/USD/2026-01-02", headers=chief).status_code == 404
    assert client.get("/api/v1/exchange-rates").status_code == 401


def test_meta_report_api_and_pages_show_currencies(client, w, sales):
    chief = client.auth("chief")
    fields = {f["name"]: f for f in client.get("/api/v1/meta/sale", headers=chief).json["fields"]}
    assert fields["amount"]["currency_field"] == "currency"
    assert fields["amount"]["rate_date"] == "signed_on"
    assert fields["fee"]["currency"] == "USD"
    assert "currency" not in fields["internal"] and "currency_field" not in fields["internal"]
    assert client.get("/api/v1/meta", headers=chief).json["base_currency"] == "CNY"
    record = client.get(f"/api/v1/sale/{sales[2][0]['id']}", headers=chief).json["data"]
    assert (record["amount"], record["currency"], record["fee"]) == ("100.00", "USD", "5.00")
    report = client.get("/api/v1/reports/sales_by_client", headers=chief).json
    assert report["currency"]["base"] == "CNY" and report["rows"][1][2] is None

    page = client.post("/login", data={"username": "chief", "password": "pw-chief",
                                       "csrf_token": _csrf(client, "/login")})
    assert page.status_code == 302
    listing = client.get("/sale").get_data(as_text=True)
    assert "100.00 USD" in listing and "1000.00 JPY" in listing and "5.00 USD" in listing
    shown = client.get(f"/sale/{sales[2][0]['id']}").get_data(as_text=True)
    assert "100.00 USD" in shown
    form = client.get("/sale/new").get_data(as_text=True)
    assert '<span class="unit" data-currency>USD</span>' in form
    assert "in the currency of “Currency”" in form
    dashboard = client.get("/dashboards/money").get_data(as_text=True)
    assert "Amounts in CNY, converted at the rates below." in dashboard
    assert "1 USD = 7.1–7.2 CNY (2 records)" in dashboard
    assert "1000.00 JPY in 1 records not converted" in dashboard


def _csrf(client, path):
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
    return match.group(1)


# ---------------------------------------------------------------- the CLI

@pytest.fixture
def crm(database_url, monkeypatch, capsys):
    """Run `crm` in this process on the currency site (the content root is the bare one)."""
    import cli
    monkeypatch.setattr(cli, "_load", lambda ctx: engine.load_registry(site=SITE,
                                                                       root=BARE_ROOT))
    monkeypatch.setenv("CRM_DATABASE_URL", database_url)

    def run(*args):
        status = cli.main(list(args))
        out = capsys.readouterr()
        return status, out.out, out.err
    return run


def test_rates_cli_sets_imports_lists_and_refuses_bad_files(crm, tmp_path):
    assert crm("migrate")[0] == 0
    assert crm("rates", "set", "usd", "2026-01-02", "7.1034") == \
        (0, "1 USD = 7.1034 CNY from 2026-01-02\n", "")
    assert crm("rates", "set", "CNY", "2026-01-02", "1") == \
        (1, "", "crm: currency: is the base currency (CNY); its rate is always 1\n")
    good = tmp_path / "rates.csv"
    good.write_text("\ufeffCurrency,Date,Rate\nEUR,2026-01-02,7.8\nJPY,2026-01-02,0.0483\n",
                    encoding="utf-8")
    assert crm("rates", "import", str(good)) == (0, "imported 2 rates\n", "")
    bad = tmp_path / "bad.csv"
    bad.write_text("currency,day,rate\nGBP,2026-01-02,9.1\nXYZ,2026-01-02,1\n"
                   "HKD,2026-02-30,0.9\n", encoding="utf-8")
    status, _, err = crm("rates", "import", str(bad))
    assert status == 1
    assert err.splitlines() == [
        f"{bad}: line 3: currency must be an ISO 4217 currency code such as USD",
        f"{bad}: line 4: day must be a date (YYYY-MM-DD)",
        "crm: 2 values are invalid; no rate was imported"]
    sheet = tmp_path / "rates.xlsx"
    book = Workbook()
    book.active.append(["currency", "day", "rate"])
    book.active.append(["GBP", dt.datetime(2026, 1, 5), 9.15])
    book.save(sheet)
    assert crm("rates", "import", str(sheet))[0] == 0
    assert crm("rates", "import", str(good))[0] == 0  # importing again replaces, never adds
    assert crm("rates", "list")[1].splitlines() == ["GBP\t2026-01-05\t9.15\tCNY",
                                                    "EUR\t2026-01-02\t7.8\tCNY",
                                                    "JPY\t2026-01-02\t0.0483\tCNY",
                                                    "USD\t2026-01-02\t7.1034\tCNY"]
    assert crm("rates", "list", "--currency", "jpy", "--since", "2026-01-02")[1] == \
        "JPY\t2026-01-02\t0.0483\tCNY\n"
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("currency,day,price\nUSD,2026-01-02,7\n", encoding="utf-8")
    status, _, err = crm("rates", "import", str(unknown))
    assert status == 1 and "column 'price'" in err
    assert crm("rates", "delete", "USD", "2026-01-02")[0] == 0
    assert crm("rates", "delete", "USD", "2026-01-02") == \
        (1, "", "crm: there is no USD rate on 2026-01-02\n")


def test_the_installed_command_has_the_rates_group(tmp_path):
    env = dict(os.environ, CRM_CONTENT_ROOT=str(BARE_ROOT), CRM_SITE=str(SITE),
               CRM_DATABASE_URL=f"sqlite:///{tmp_path / 'crm.db'}")
    done = subprocess.run([sys.executable, str(REPO / "cli.py"), "rates", "list"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
                          check=False)
    assert done.returncode == 1 and "crm migrate" in done.stderr  # not migrated yet


# ---------------------------------------------------------------- the load-time checks

def test_currency_mistakes_are_reported_with_their_place(tmp_path):
    site = tmp_path / "site"
    (site / "entities").mkdir(parents=True)
    (site / "reports").mkdir()
    (site / "dashboards").mkdir()
    (site / "app.yaml").write_text("app: bad\nbase_currency: XYZ\n")
    (site / "entities" / "deal.yaml").write_text(
        "entity: deal\n"
        "fields:\n"
        "  name: {type: string}\n"
        "  code: {type: enum, options: [USD, RMB, usd]}\n"            # line 4
        "  count: {type: integer}\n"
        "  price: {type: money, currency: code, rate_date: signed}\n"   # line 6
        "  cost: {type: money, currency: count}\n"                      # line 7
        "  fee: {type: money, currency: USX, rate_date: name}\n"        # line 8
        "  tax: {type: money, currency: cod}\n"                         # line 9
        "  net: {type: money, currency: code, rate_date: name}\n"       # line 10
        "  gross: {type: money, currency: rmb}\n"                       # line 11
        "  signed: {type: date}\n"
        "  buyer: {type: reference, to: deal}\n")
    (site / "reports" / "by_name.yaml").write_text(
        "report: by_name\nentity: deal\ngroup_by: [name]\nmeasures:\n"
        "  n: {agg: count}\n  value: {agg: sum, field: price}\n")
    (site / "reports" / "rfm.yaml").write_text(
        "report: rfm\nentity: deal\nkind: rfm\ncustomer: buyer\ndate: signed\namount: price\n")
    problems = problems_of(site, root=BARE_ROOT)
    assert problems == [
        ("app.yaml", 2, 16, "bad-currency"),
        ("entities/deal.yaml", 4, 37, "bad-currency"),  # RMB
        ("entities/deal.yaml", 4, 42, "bad-currency"),  # usd
        ("entities/deal.yaml", 7, 33, "bad-currency-field"),
        ("entities/deal.yaml", 8, 32, "bad-currency"),
        ("entities/deal.yaml", 8, 48, "bad-rate-date"),
        ("entities/deal.yaml", 9, 32, "bad-currency"),
        ("entities/deal.yaml", 10, 49, "bad-rate-date"),
        ("entities/deal.yaml", 11, 34, "bad-currency"),
        ("reports/by_name.yaml", 6, 10, "missing-base-currency"),
        ("reports/rfm.yaml", 6, 9, "bad-currency-field"),
    ], problems


def test_check_messages_name_the_likely_fix(tmp_path):
    site = tmp_path / "site"
    (site / "entities").mkdir(parents=True)
    (site / "app.yaml").write_text("app: bad\nbase_currency: CNY\n")
    (site / "entities" / "deal.yaml").write_text(
        "entity: deal\nfields:\n  code: {type: enum, options: [USD, RMB]}\n"
        "  price: {type: money, currency: cod}\n  gross: {type: money, currency: yen}\n"
        "  net: {type: money, currency: code, rate_date: day}\n  day: {type: date}\n"
        "  paid: {type: money, currency: code, rate_date: dy}\n")
    with pytest.raises(engine.ConfigError) as caught:
        engine.load_registry(site=site, root=BARE_ROOT)
    messages = [p.message for p in caught.value.problems]
    assert messages == [
        "field 'code' holds a currency: option 'RMB' is not an ISO 4217 currency code "
        "(did you mean 'CNY'?)",
        "field 'price': currency 'cod' is neither an ISO 4217 code nor a field of 'deal' "
        "(did you mean 'code'?)",
        "field 'gross': currency 'yen' is neither an ISO 4217 code nor a field of 'deal' "
        "(did you mean 'JPY'?)",
        "field 'paid': rate_date: 'deal' has no field 'dy' (did you mean 'day'?)"]


def test_a_pack_sets_a_default_base_currency_and_the_site_overrides_it(tmp_path):
    root = tmp_path / "root"
    (root / "metadata").mkdir(parents=True)
    pack = root / "industry_packs" / "trade"
    (pack / "entities").mkdir(parents=True)
    (pack / "pack.yaml").write_text("pack: trade\nlabel: Trade\nbase_currency: USD\n")
    site = tmp_path / "site"
    site.mkdir()
    (site / "app.yaml").write_text("app: s\npack: trade\n")
    assert engine.load_registry(site=site, root=root).base_currency == "USD"
    (site / "app.yaml").write_text("app: s\npack: trade\nbase_currency: EUR\n")
    assert engine.load_registry(site=site, root=root).base_currency == "EUR"
    (site / "app.yaml").write_text("app: s\npack: trade\nbase_currency: eur\n")
    assert [p[3] for p in problems_of(site, root=root)] == ["bad-value"]


def test_without_a_base_currency_rates_cannot_be_kept(tmp_path, database_url):
    site = tmp_path / "site"
    (site / "entities").mkdir(parents=True)
    (site / "app.yaml").write_text("app: plain\n")
    (site / "entities" / "thing.yaml").write_text(
        "entity: thing\nfields:\n  code: {type: enum, options: [USD, EUR]}\n"
        "  price: {type: money, currency: code}\n")
    world = World(database_url, site=site)
    rates = ExchangeRates(world.registry, world.engine, world.service.schema)
    with pytest.raises(BadRequest, match="no base currency"):
        rates.set_many([{"currency": "USD", "day": "2026-01-01", "rate": "7"}])
    world.engine.dispose()
