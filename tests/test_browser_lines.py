"""Browser test of the lines editor: lines added with "Add line" on a phone, saved with the
record, and the parent's rollup showing their total."""

import re

from engine.records.access import SYSTEM
from test_browser import browser, server, sign_in  # noqa: F401  (fixtures used below)


def test_add_two_lines_with_the_button_and_see_the_total(browser, server):  # noqa: F811
    base, world = server
    rep = world.users.caller(world.users.by_username("rep"))
    pump = world.service.create(SYSTEM, "product", {"name": "Pump"})
    valve = world.service.create(SYSTEM, "product", {"name": "Valve"})
    account = world.service.create(rep, "account", {"name": "Acme"})
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, base, "rep")

    # the "new" link of the account's related deals fills in the account
    page.goto(f"{base}/account/{account['id']}")
    page.click("#related-deal-account a:has-text('New')")
    page.wait_for_load_state()
    assert page.input_value("#f-account") == str(account["id"])

    editor = page.locator("#lines-lines")
    rows = editor.locator("tbody tr.line-row:visible")
    assert rows.count() == 0  # the empty rows are for forms without JavaScript
    assert editor.locator(".lines-hint").is_hidden()
    assert editor.locator(".lines-empty").is_visible()
    page.fill("#f-title", "Phone order")
    add = editor.locator("button.lines-add")
    add.click()
    add.click()
    assert rows.count() == 2 and editor.locator(".lines-empty").is_hidden()
    first, second = rows.nth(0), rows.nth(1)
    # each cell names its input on a phone, where a line is a card, not a table row
    assert first.locator("label.cell-label", has_text="Unit price").is_visible()
    first.locator("select[name$='.product']").select_option(str(pump["id"]))
    first.locator("input[name$='.quantity']").fill("2")
    first.locator("input[name$='.unit_price']").fill("10.50")
    second.locator("select[name$='.product']").select_option(str(valve["id"]))
    second.locator("input[name$='.unit_price']").fill("4")
    assert first.locator("select[name$='.product']").get_attribute("name") != \
        second.locator("select[name$='.product']").get_attribute("name")

    # a third line, added and removed again, is not saved (its quantity would be refused)
    add.click()
    third = rows.nth(2)
    third.locator("input[name$='.quantity']").fill("0")
    third.locator("button.line-remove-button").click()
    assert rows.count() == 2
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    page.click(".buttons button.primary")
    page.wait_for_load_state()
    assert re.search(r"/deal/\d+$", page.url), page.content()
    total = page.locator("dl.values > div", has=page.locator("dt", has_text="Lines total"))
    assert total.locator("dd").inner_text() == "25.00"  # 2 × 10.50 + 4
    deal_id = int(page.url.rsplit("/", 1)[1])
    lines = world.service.get(SYSTEM, "deal", deal_id)["lines"]
    assert [(line["product"], line["quantity"]) for line in lines] == [(pump["id"], 2),
                                                                      (valve["id"], 1)]
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert errors == []
    page.close()
