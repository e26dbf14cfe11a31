"""Browser tests of `crm serve --dev`: YAML edits show up without a restart, a broken edit shows
its problems (on a phone too), and fixing it brings the app back by itself."""

import threading
import time

import pytest

from conftest import BARE_ROOT
from test_browser import ARGS, CHROMIUM
from test_dev_server import CONTACT, ROLES, write_dev_site

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    """One dev server on a fresh SQLite database, watching its site folder, over HTTP."""
    import waitress

    from web.devserver import DevServer
    folder = tmp_path_factory.mktemp("dev")
    site = write_dev_site(folder / "site")
    server = DevServer(site, database=f"sqlite:///{folder / 'crm.db'}", root=BARE_ROOT,
                       secret="browser-dev-key", interval=0.1, settle=0.2).start()
    httpd = waitress.create_server(server, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=httpd.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.effective_port}", server
    httpd.close()
    server.stop()


def save(server, name: str, text: str):
    """Write a site file and wait for the watcher to reload; return the new state."""
    before = server.state.generation
    (server.site / name).write_text(text, encoding="utf-8")
    deadline = time.monotonic() + 15
    while server.state.generation == before:
        assert time.monotonic() < deadline, "the dev server did not notice the save"
        time.sleep(0.05)
    return server.state


def sign_in(page, base):
    page.goto(base + "/login?next=/contact/new")
    page.fill("input[name=username]", "rep")
    page.fill("input[name=password]", "pw-rep")
    page.press("input[name=password]", "Enter")
    page.wait_for_selector("input[name=name]")


def test_first_start_then_edits_appear_without_a_restart(browser, dev):
    base, server = dev
    page = browser.new_page(viewport=PHONE)
    # a fresh database: the plan is shown with its button
    page.goto(base + "/contact/new")
    assert "create table e_contact for entity contact" in page.inner_text("main")
    page.click("text=Apply the migration")
    page.wait_for_load_state()
    assert server.state.status == "ok"
    server.state.app.extensions["crm"].users.create("rep", "pw-rep", ["rep"])
    sign_in(page, base)
    assert "Full name" not in page.inner_text("main")

    # a label edit: the reloaded page shows it, same server, same session
    save(server, "entities/contact.yaml", CONTACT.replace("en: Name", "en: Full name"))
    page.reload()
    assert "Full name" in page.inner_text("main")

    # a new field needs a column first: the plan appears, one click applies it
    assert save(server, "entities/contact.yaml",
                CONTACT + "  phone: {type: phone, label: {en: Mobile, zh: 手机}}\n"
                ).status == "migration"
    page.reload()
    assert "add column e_contact.phone (phone)" in page.inner_text("main")
    page.click("text=Apply the migration")
    page.wait_for_selector("input[name=phone]")
    assert page.url == base + "/contact/new"
    assert "Mobile" in page.inner_text("main")
    page.close()


def test_a_broken_edit_shows_its_problems_and_the_fix_brings_the_app_back(browser, dev):
    base, server = dev
    if server.state.status == "migration":  # run alone: bring the database up first
        server.apply_migration(server.state.generation)
    if not server.state.app.extensions["crm"].users.by_username("rep"):
        server.state.app.extensions["crm"].users.create("rep", "pw-rep", ["rep"])
    good = (server.site / "entities" / "contact.yaml").read_text(encoding="utf-8")
    page = browser.new_page(viewport=PHONE)
    sign_in(page, base)

    broken = save(server, "entities/contact.yaml", good.replace("type: string", "type: strng"))
    assert broken.status == "invalid"
    save(server, "roles.yaml", ROLES.replace("read: all", "read: everything"))
    page.reload()
    main = page.inner_text("main")
    assert "Problems in the configuration: 2" in main
    assert f"{server.site / 'entities' / 'contact.yaml'}:4:16" in main
    assert "did you mean 'string'?" in main
    assert f"{server.site / 'roles.yaml'}:5:23 [wrong-type]" in main
    assert "got 'everything'" in main and main.count("Hint:") == 2  # the documented fix
    # readable on a phone: long paths wrap instead of widening the page
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.click("text=中文")
    page.wait_for_load_state()
    assert "配置中有 2 个问题" in page.inner_text("h1")

    # the fix: the error page notices the reload and goes back to the app by itself
    save(server, "roles.yaml", ROLES)
    page.wait_for_selector("h1:has-text('配置中有 1 个问题')", timeout=15000)
    (server.site / "entities" / "contact.yaml").write_text(good, encoding="utf-8")
    page.wait_for_selector("input[name=name]", timeout=15000)
    assert server.state.status == "ok" and "/login" not in page.url  # still signed in
    page.close()
