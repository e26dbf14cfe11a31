"""Browser test of the kanban board: Debian's Chromium on a phone-sized page, a real server."""

import threading

import pytest

from conftest import FIXTURES, World
from test_browser import browser, sign_in  # noqa: F401  (browser is a fixture used below)

KANBAN_SITE = FIXTURES / "sites" / "kanban"


@pytest.fixture
def kanban_server(tmp_path, monkeypatch):
    import waitress

    from web import create_app
    monkeypatch.setenv("CRM_SECRET_KEY", "browser-test-key")
    world = World(f"sqlite:///{tmp_path / 'kanban.db'}", site=KANBAN_SITE)
    world.users.create("rep", "pw-rep", ["rep"])
    app = create_app(world.registry, world.engine)
    httpd = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=httpd.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.effective_port}", world
    httpd.close()
    world.engine.dispose()


def cards_in(page, state):
    return page.locator(f".board-column[data-state={state}] .kanban-card")


def test_move_cards_on_the_board_with_the_form_and_by_dragging(browser, kanban_server):
    base, world = kanban_server
    rep = world.users.caller(world.users.by_username("rep"))
    company = world.service.create(rep, "company", {"name": "Acme"})
    pump = world.service.create(rep, "deal", {"title": "Pump order", "company": company["id"]})
    world.service.create(rep, "deal", {"title": "Valve order", "company": company["id"]})

    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    sign_in(page, base, "rep")
    page.goto(base + "/deal")
    page.click("a[href='/deal/board']")
    page.wait_for_load_state()
    assert page.url == base + "/deal/board"
    assert cards_in(page, "lead").count() == 2
    assert page.inner_text(".board-column[data-state=lead] .count") == "2"
    # the page itself does not scroll sideways on a phone; only the board does
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # without dragging: pick the step on the card and press Move
    card = page.locator(f"#card-{pump['id']}")
    card.locator("select[name=transition]").select_option("propose")
    card.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert "“Pump order” moved to Proposal." in page.inner_text(".notice")
    assert cards_in(page, "proposal").all_inner_texts()[0].startswith("Pump order")
    assert page.inner_text(".board-column[data-state=proposal] .count") == "1"
    assert page.inner_text(".board-column[data-state=lead] .count") == "1"
    assert world.service.get(rep, "deal", pump["id"])["stage"] == "proposal"

    # dragging the other card onto the Proposal column fires the same kind of move; dragging
    # is the mouse's enhancement, so on a desktop-sized window where every column is in view
    page.set_viewport_size({"width": 1280, "height": 800})
    valve = cards_in(page, "lead").first
    with page.expect_navigation():  # kanban.js submits the card's form on the drop
        valve.drag_to(page.locator(".board-column[data-state=proposal]"))
    assert "“Valve order” moved to Proposal." in page.inner_text(".notice")
    assert sorted(t.split("\n")[0] for t in cards_in(page, "proposal").all_inner_texts()) == \
        ["Pump order", "Valve order"]
    assert cards_in(page, "lead").count() == 0

    # a refused drop is explained on the board, in the person's language
    page.select_option("#locale-select", "zh")
    page.click("form[action$='/locale'] button")
    page.wait_for_load_state()
    with page.expect_navigation():
        cards_in(page, "proposal").first.drag_to(page.locator(".board-column[data-state=lead]"))
    assert "没有从“报价”到“线索”的流程操作。" in page.inner_text(".alert")
    page.close()
