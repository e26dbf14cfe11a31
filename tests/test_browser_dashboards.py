"""Browser test of a dashboard: Chart.js (served by the app) draws the report, a click on a
bar opens the list filtered to it, and the page fits a phone."""

import re

from test_browser import browser, server, sign_in  # noqa: F401  (fixtures used below)


def test_dashboard_draws_a_chart_and_a_bar_opens_the_filtered_list(browser, server):  # noqa: F811
    base, world = server
    boss = world.users.caller(world.users.by_username("boss"))
    account = world.service.create(boss, "account", {"name": "Acme"})
    for title, amount in (("Pump", "100"), ("Valve", "40")):
        deal = world.service.create(boss, "deal", {"title": title, "account": account["id"],
                                                   "amount": amount})
        world.service.transition(boss, "deal", deal["id"], "win")
    world.service.create(boss, "deal", {"title": "Open one", "account": account["id"]})
    page = browser.new_page(viewport={"width": 390, "height": 844})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "boss")
    page.click("nav.sidebar >> text=Overview")
    page.wait_for_selector("canvas[data-drawn=true]")
    assert errors == []
    assert page.locator(".widget-metric .metric").first.inner_text() == "140.00"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # the largest bar ("won") is the first: click the middle of it
    canvas = page.locator("canvas[data-drawn=true]")
    point = page.evaluate("""() => {
        const chart = document.querySelector('canvas[data-drawn=true]').chart;
        const bar = chart.getDatasetMeta(0).data[0];
        return {x: bar.x, y: (bar.y + bar.base) / 2};
    }""")
    canvas.click(position=point)  # scrolled into view first
    page.wait_for_url(re.compile(r".*/deal\?stage=won$"))
    assert page.locator("table tbody tr").count() == 2
    page.close()
