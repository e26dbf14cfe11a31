"""Dashboards: who sees which, every widget's numbers after row permissions, the page with
its charts and tables, click-through to the filtered list, and CSV export."""

import re

import pytest

from engine.errors import NotFound
from engine.records.dashboards import dashboard_data, visible_dashboards
from tests.test_records_reports import deals  # noqa: F401 - the fixture
from tests.test_web_ui import html, sign_in
from web import create_app


def widgets_by_label(data):
    return {w["label"]: w for w in data["widgets"]}


def test_widgets_count_what_each_caller_may_read(world, deals):  # noqa: F811
    admin, rep1, _ = deals
    world.service.update(admin, "account", 1, {"credit_limit": "300"}, 1)
    world.service.update(admin, "account", 2, {"credit_limit": "40.5"}, 1)
    everything = widgets_by_label(dashboard_data(world.service, admin, "overview"))
    assert everything["Open and won value"]["value"] == "1155.00"  # 100 + 50 + 1000 + 5
    assert everything["Deals"]["value"] == 6
    assert everything["Credit limits"]["value"] == "340.50"
    assert everything["Deals by stage"]["rows"][0][:2] == ["won", 3]
    assert everything["Deals by stage"]["chart"] == "bar"
    own = widgets_by_label(dashboard_data(world.service, rep1, "overview"))
    assert own["Open and won value"]["value"] == "150.00"  # rep1: 100 + 50 (+ the empty one)
    assert own["Deals"]["value"] == 4
    assert own["Credit limits"]["value"] == "300.00"  # rep1 reads only account A1
    assert [r[:2] for r in own["Deals by stage"]["rows"]] == [["won", 2], ["lost", 1],
                                                               ["open", 1]]


def test_who_sees_which_dashboard(world):
    admin, rep = world.user("admin1", "admin"), world.user("rep1", "rep")
    viewer = world.user("viewer1", "viewer")
    assert [d.name for d in visible_dashboards(world.registry, admin)] == ["overview"]
    assert [d.name for d in visible_dashboards(world.registry, rep)] == ["overview"]
    assert visible_dashboards(world.registry, viewer) == []
    with pytest.raises(NotFound):
        dashboard_data(world.service, viewer, "overview")
    with pytest.raises(NotFound):
        dashboard_data(world.service, admin, "nope")


@pytest.fixture
def ui(world, monkeypatch, deals):  # noqa: F811
    monkeypatch.setenv("CRM_SECRET_KEY", "test-secret-key")
    world.users.create("boss", "pw-boss", ["manager"])
    world.users.create("viewer", "pw-viewer", ["viewer"])
    client = create_app(world.registry, world.engine).test_client()
    return client


def test_the_page_shows_charts_tables_and_links_to_the_lists(ui):
    sign_in(ui, "boss")
    page = html(ui.get("/dashboards/overview"))
    assert 'href="/dashboards/overview"' in page  # in the navigation
    assert "Open and won value" in page and "1155.00" in page
    assert page.count("<canvas") == 1  # deals_by_stage is a bar chart, deals_by_month a table
    assert 'src="/static/vendor/chart.umd.js"' in page
    assert '<a href="/deal?stage=won">won</a>' in page
    assert '/reports/deals_by_stage.csv' in page
    month = re.search(r'<a href="/deal\?created_at__gte=(\d{4}-\d{2})-01&amp;'
                      r'created_at__lt=(\d{4}-\d{2})-01">', page)
    assert month, page
    listed = html(ui.get("/deal?stage=won"))
    records = re.compile(r'href="/deal/\d+"')
    assert len(records.findall(listed)) == 3 and "Clear filters" in listed
    assert len(records.findall(html(ui.get("/deal?stage=won&sort=title")))) == 3
    assert ui.get("/deal?stage=nonsense").status_code == 400
    assert ui.get("/deal?secret__gte=1").status_code == 400


def test_csv_export_of_a_report(ui):
    sign_in(ui, "boss")
    response = ui.get("/reports/deals_by_stage.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    lines = text.lstrip("\ufeff").splitlines()
    assert lines[0] == "Status,Deals,Won,Value,Average,Biggest,Share"
    assert lines[1] == "won,3,3,1150.0,383.333333,1000.0,383.333333"


def test_a_viewer_without_dashboards_sees_none(ui):
    sign_in(ui, "viewer")
    assert "/dashboards/overview" not in html(ui.get("/dashboards"))
    assert ui.get("/dashboards/overview").status_code == 404
    assert ui.get("/reports/deals_by_stage.csv").status_code == 404


def test_dashboards_need_a_session(ui):
    for path in ("/dashboards", "/dashboards/overview", "/reports/deals_by_stage.csv"):
        response = ui.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_api_gives_a_dashboard_to_a_token(world, deals):  # noqa: F811
    from web.auth import Tokens
    admin, rep1, _ = deals
    client = create_app(world.registry, world.engine).test_client()
    token = Tokens(world.engine, world.service.schema, 30).issue(rep1.user_id)
    headers = {"Authorization": f"Bearer {token}"}
    body = client.get("/api/v1/dashboards/overview", headers=headers).get_json()
    deals_widget = widgets_by_label(body["data"])["Deals"]
    assert deals_widget == {"position": 1, "width": "half", "kind": "metric",
                            "format": "integer", "entity": "deal", "label": "Deals", "value": 4}
    assert client.get("/api/v1/dashboards/nope", headers=headers).status_code == 404
    assert client.get("/api/v1/dashboards/overview").status_code == 401
