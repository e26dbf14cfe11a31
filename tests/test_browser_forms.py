"""Browser test: a form following its rules while typed into, and the reference picker."""

import threading

import pytest

from conftest import World
from test_browser import browser, sign_in  # noqa: F401 - the module's Chromium fixture
from web.formfields import REFERENCE_CHOICES


@pytest.fixture
def server(tmp_path, monkeypatch):
    import waitress

    from web import create_app
    monkeypatch.setenv("CRM_SECRET_KEY", "browser-forms-key")
    world = World(f"sqlite:///{tmp_path / 'browser.db'}")
    world.users.create("rep", "pw-rep", ["rep"])
    rep = world.users.caller(world.users.by_username("rep"))
    for i in range(REFERENCE_CHOICES):  # one select's worth, and more below: the picker
        world.service.create(rep, "account", {"name": f"Company {i:03d}"})
    vip = world.service.create(rep, "account", {"name": "Vip Trading", "tier": "a",
                                                "tax_id": "T-1"})
    evil = world.service.create(rep, "account", {"name": '<img src=x onerror="window.pwned=1">'
                                                         'Evil'})
    app = create_app(world.registry, world.engine)
    httpd = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=httpd.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.effective_port}", world, vip, evil
    httpd.close()
    world.engine.dispose()


def test_rules_follow_typing_and_the_picker_finds_and_selects(browser, server):  # noqa: F811
    base, world, vip, evil = server
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    sign_in(page, base, "rep")

    # choosing tier "a" makes the tax id required and shows "VIP since", without saving
    page.goto(base + "/account/new")
    vip_since = page.locator("#field-vip_since")
    tax_marker = page.locator("#field-tax_id .req")
    assert vip_since.is_hidden() and tax_marker.is_hidden()
    page.select_option("#f-tier", "a")
    vip_since.wait_for(state="visible")
    tax_marker.wait_for(state="visible")
    assert page.eval_on_selector("#f-tax_id", "input => input.required")
    page.select_option("#f-tier", "b")
    vip_since.wait_for(state="hidden")
    tax_marker.wait_for(state="hidden")
    assert not page.eval_on_selector("#f-tax_id", "input => input.required")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # the deal's account: more records than a select lists, so a search box
    page.goto(base + "/deal/new")
    search = page.locator("#f-account")
    assert search.get_attribute("role") == "combobox"
    assert page.locator("input[name=account]").get_attribute("type") == "hidden"
    terms = page.locator("#field-vip_terms")
    assert terms.is_hidden()

    # markup in a title is shown as text, never run
    search.fill("Evil")
    option = page.locator("#f-account-list [role=option]").first
    option.wait_for()
    assert option.inner_text().startswith('<img src=x onerror="window.pwned=1">Evil')
    assert page.evaluate("window.pwned === undefined")
    page.keyboard.press("Escape")

    # type, move with the arrow key, choose with Enter: the id goes in the hidden input
    search.fill("vip tr")
    page.locator("#f-account-list [role=option]", has_text="Vip Trading").wait_for()
    search.press("ArrowDown")
    assert page.locator("#f-account-list [aria-selected=true]").inner_text() \
        .startswith("Vip Trading")
    search.press("Enter")
    assert page.input_value("input[name=account]") == str(vip["id"])
    assert search.input_value() == "Vip Trading"
    assert page.locator("#f-account-list").is_hidden()
    terms.wait_for(state="visible")  # its rule reads the chosen account's tier

    page.fill("#f-title", "Pump order")
    page.click("button[type=submit].primary")
    page.wait_for_load_state()
    deal_id = int(page.url.rsplit("/", 1)[1])
    rep = world.users.caller(world.users.by_username("rep"))
    assert world.service.get(rep, "deal", deal_id)["account"] == vip["id"]
    assert page.evaluate("window.pwned === undefined")
    page.close()
