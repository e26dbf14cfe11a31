"""Browser tests of the data dictionary: Mermaid, served by the application itself, draws the
workflow as an SVG on the admin page with every request kept on this machine; and the
`crm docs` files of a 46-entity pack draw every diagram when opened from file://."""

from urllib.parse import urlparse

from test_browser import browser, server, sign_in  # noqa: F401  (fixtures used below)


def offline(page):
    """Refuse every request that would leave the machine; return the list of those tried."""
    tried = []

    def route(request_route):
        url = urlparse(request_route.request.url)
        if url.scheme in ("file", "data", "blob") or url.hostname == "127.0.0.1":
            request_route.continue_()
        else:
            tried.append(request_route.request.url)
            request_route.abort()
    page.route("**/*", route)
    return tried


def test_the_workflow_diagram_renders_as_svg_offline(browser, server):  # noqa: F811
    base, world = server
    world.users.create("root", "pw-root", ["admin"])
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tried = offline(page)
    sign_in(page, base, "root")
    page.click("header >> text=Admin")
    page.click("nav.admin-tabs >> text=Data dictionary")
    page.wait_for_load_state()
    assert page.url.rstrip("/").endswith("/admin/dictionary")
    page.click("table.dict-entities >> text=deal")
    page.wait_for_selector("html[data-diagrams]")
    assert page.evaluate("document.documentElement.dataset.diagrams") == "ready"
    svg = page.locator("#workflow pre.mermaid svg")
    assert svg.count() == 1
    text = svg.evaluate("node => node.textContent")
    for state in world.registry.workflows["deal_flow"].states.values():
        assert state.label.get("en") in text
    for transition in world.registry.workflows["deal_flow"].transitions.values():
        assert transition.label.get("en") in text
    assert page.locator("#references pre.mermaid svg").count() == 1
    # the page itself stays as wide as the phone: tables and diagrams scroll in their boxes
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert tried == [] and errors == []
    page.close()


def test_crm_docs_pages_draw_every_diagram_from_file(browser, tmp_path):  # noqa: F811
    import engine
    from web.dictionary import write_docs
    registry = engine.load_registry(pack="manufacturing")
    folder = tmp_path / "docs"
    write_docs(registry, folder, "zh")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    tried = offline(page)
    entity = next(name for name, w in registry.workflow_by_entity.items()
                  if len(w.transitions) >= 5)
    for name in ("references.html", f"entity-{entity}.html"):
        page.goto((folder / name).as_uri())
        page.wait_for_selector("html[data-diagrams]", timeout=60000)
        assert page.evaluate("document.documentElement.dataset.diagrams") == "ready", \
            page.locator("pre.diagram-failed").first.get_attribute("data-error")
        diagrams = page.locator("pre.mermaid")
        assert diagrams.count() >= 2
        assert page.locator("pre.mermaid svg").count() == diagrams.count()
    workflow = registry.workflow_by_entity[entity]
    text = page.locator("#workflow pre.mermaid svg").evaluate("node => node.textContent")
    for state in workflow.states.values():
        assert state.label.get("zh") in text
    # a big diagram can shrink to the page's width and back
    fit = page.locator("button.diagram-tools")
    if fit.count():
        fit.first.click()
        assert page.locator(".diagram.fit").count() == 1
    assert tried == [] and errors == []
    page.close()
