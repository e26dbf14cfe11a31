"""Browser tests: Playwright driving Debian's Chromium against a real server on loopback."""

import os
import shutil
import threading

import pytest

from conftest import World

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is not installed (.ci/run installs Debian's chromium)")
    with playwright.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        instance.close()


@pytest.fixture
def server(tmp_path, monkeypatch):
    import waitress

    from web import create_app
    monkeypatch.setenv("CRM_SECRET_KEY", "browser-test-key")
    world = World(f"sqlite:///{tmp_path / 'browser.db'}")
    world.users.create("rep", "pw-rep", ["rep"])
    world.users.create("boss", "pw-boss", ["manager"])
    app = create_app(world.registry, world.engine)
    from engine.runtime.embedded import start_background
    background = start_background(app.extensions["crm_runtime"], scheduler=False)  # crm serve's
    httpd = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=httpd.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.effective_port}", world
    httpd.close()
    background.stop()
    world.engine.dispose()


def sign_in(page, base, username):
    page.goto(base + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", f"pw-{username}")
    page.press("input[name=password]", "Enter")
    page.wait_for_load_state()


def test_sign_in_create_validate_transition_history_language_and_escaping(browser, server):
    base, world = server
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    sign_in(page, base, "rep")
    assert "/login" not in page.url

    # a validation error appears next to its field
    page.goto(base + "/account/new")
    page.fill("input[name=email]", "not-an-address")
    page.press("input[name=email]", "Enter")
    page.wait_for_load_state()
    name_field = page.locator(".field", has=page.locator("input[name=name]"))
    assert "is required" in name_field.inner_text()
    email_field = page.locator(".field", has=page.locator("input[name=email]"))
    assert "email" in email_field.inner_text().lower()

    # create a record through the form; a stored <script> is shown as text
    page.fill("input[name=name]", "<script>window.pwned=1</script>")
    page.fill("input[name=email]", "buyer@example.com")
    page.press("input[name=name]", "Enter")
    page.wait_for_load_state()
    assert page.evaluate("window.pwned === undefined")
    assert "<script>window.pwned=1</script>" in page.inner_text("h1")
    account_url = page.url

    # a deal on it, then fire a transition from the record page, and see it in the history
    account_id = account_url.rsplit("/", 1)[1]
    deal = world.service.create(world.users.caller(world.users.by_username("rep")), "deal",
                                {"title": "Pump order", "account": int(account_id)})
    page.goto(f"{base}/deal/{deal['id']}")
    page.click("form[action$='/transitions/win'] button")
    page.wait_for_load_state()
    assert world.service.get(world.users.caller(1), "deal", deal["id"])["stage"] == "won"
    timeline = page.locator("ol.timeline > li").first.inner_text()
    assert "Won" in timeline and "Open" in timeline  # the state change, newest first

    # switch language: the UI and the YAML labels turn Chinese
    page.select_option("#locale-select", "zh")
    page.click("form[action$='/locale'] button")
    page.wait_for_load_state()
    page.goto(base + "/account")
    assert "客户" in page.inner_text("body")
    assert page.evaluate("window.pwned === undefined")
    page.close()
