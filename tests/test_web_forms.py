"""Forms that follow their rules (POST .../form-state) and the reference picker's search."""

import re

import pytest

from test_web_ui import csrf_of, html, post, sign_in
from web import create_app


@pytest.fixture
def ui(world, monkeypatch):
    monkeypatch.setenv("CRM_SECRET_KEY", "test-secret-key")
    for name, role in (("rep", "rep"), ("rep2", "rep"), ("viewer", "viewer"), ("boss", "manager")):
        world.users.create(name, f"pw-{name}", [role])
    client = create_app(world.registry, world.engine).test_client()
    client.world = world
    return client


def caller(client, username):
    users = client.world.users
    return users.caller(users.by_username(username))


def state(client, path, data, csrf_from):
    response = post(client, path, data, csrf_from)
    assert response.status_code == 200, html(response)
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json["fields"]


def row(page: str, name: str) -> str:
    """The opening tag and inside of a field's row in a rendered form."""
    start = page.rindex("<div", 0, page.index(f'id="field-{name}"'))
    end = page.find('class="field', start + len('<div class="field'))
    return page[start:end if end >= 0 else len(page)]


def test_the_state_answers_like_the_check_on_save(ui):
    sign_in(ui, "rep")
    for tier in ("a", "b", ""):
        fields = state(ui, "/account/form-state", {"name": "X", "tier": tier}, "/account/new")
        saved = post(ui, "/account/new", {"name": "X", "tier": tier}, "/account/new")
        refused = saved.status_code == 422 and "is required" in row(html(saved), "tax_id")
        assert fields["tax_id"]["required"] is (tier == "a") is refused
        assert fields["vip_since"]["visible"] is (tier == "a")
        assert fields["name"] == {"visible": True, "required": True, "read_only": False}
    assert "secret" not in fields and "vip_label" not in fields  # hidden, computed: no input


def test_a_rule_on_a_referenced_record(ui):
    sign_in(ui, "rep")
    rep = caller(ui, "rep")
    vip = ui.world.service.create(rep, "account", {"name": "Vip", "tier": "a", "tax_id": "T"})
    plain = ui.world.service.create(rep, "account", {"name": "Plain", "tier": "c"})
    for account, visible in ((vip, True), (plain, False), (None, False)):
        fields = state(ui, "/deal/form-state",
                       {"title": "D", "account": str(account["id"]) if account else ""},
                       "/deal/new")
        assert fields["vip_terms"]["visible"] is visible
        assert fields["account"]["required"] is True


def test_the_first_page_is_right_without_javascript(ui):
    sign_in(ui, "rep")
    page = html(ui.get("/account/new"))
    assert 'data-state-url="/account/form-state"' in page
    assert '<script src="/static/forms.js" defer></script>' in page
    assert re.search(r'id="field-vip_since"[^>]*\shidden>', page)  # tier is empty
    assert re.search(r'<span class="req"[^>]*hidden>\*</span>', row(page, "tax_id"))
    assert 'class="req" title="required">*</span>' in row(page, "name")
    assert ' required>' in row(page, "name")
    # sent back with tier a: the rows and markers follow the values shown
    page = html(post(ui, "/account/new", {"name": "", "tier": "a"}, "/account/new"))
    assert 'class="req" title="required">*</span>' in row(page, "tax_id")
    assert "is required" in row(page, "tax_id")
    assert not re.search(r'id="field-vip_since"[^>]*\shidden>', page)


def test_the_edit_form_locks_what_the_stored_record_locks(ui):
    sign_in(ui, "rep")
    rep = caller(ui, "rep")
    locked = ui.world.service.create(rep, "account", {"name": "A", "tier": "a", "tax_id": "T",
                                                      "locked_note": "kept"})
    free = ui.world.service.create(rep, "account", {"name": "B", "tier": "c"})
    page = html(ui.get(f"/account/{locked['id']}"))
    assert 'data-state-url="/account/%d/form-state"' % locked["id"] in page
    assert re.search(r'<input id="f-locked_note" name="locked_note" type="text" '
                     r'value="kept" readonly>', page)
    assert "is-read-only" in row(page, "locked_note")
    fields = state(ui, f"/account/{locked['id']}/form-state", {"tier": "c"},
                   f"/account/{locked['id']}")
    assert fields["locked_note"]["read_only"] is True and fields["tax_id"]["required"] is False
    assert state(ui, f"/account/{free['id']}/form-state", {"tier": "a"},
                 f"/account/{free['id']}")["locked_note"]["read_only"] is False
    # saving the unchanged, locked value with other changes is accepted
    saved = post(ui, f"/account/{locked['id']}", {"name": "A2", "tier": "a", "tax_id": "T",
                                                  "locked_note": "kept", "active": "true",
                                                  "version": "1"}, f"/account/{locked['id']}")
    assert saved.status_code == 302, html(saved)


def test_a_locked_select_still_sends_its_value(site, tmp_path, monkeypatch, database_url):
    from conftest import World
    files = {"entities/ticket.yaml": """
        entity: ticket
        fields:
          subject: {type: string, required: true}
          closed: {type: boolean}
          priority: {type: enum, options: [low, high], read_only_if: "closed"}
        """}
    world = World(database_url, site=site(files))
    monkeypatch.setenv("CRM_SECRET_KEY", "k")
    world.users.create("admin", "pw-admin", ["admin"])
    client = create_app(world.registry, world.engine).test_client()
    sign_in(client, "admin")
    admin = world.users.caller(world.users.by_username("admin"))
    ticket = world.service.create(admin, "ticket", {"subject": "S", "closed": True,
                                                    "priority": "high"})
    page = html(client.get(f"/ticket/{ticket['id']}"))
    assert re.search(r'<select id="f-priority" name="priority" disabled>', page)
    assert '<input type="hidden" name="priority" value="high" data-mirror>' in page
    saved = post(client, f"/ticket/{ticket['id']}", {"subject": "S2", "closed": "true",
                                                     "priority": "high", "version": "1"},
                 f"/ticket/{ticket['id']}")
    assert saved.status_code == 302, html(saved)
    assert world.service.get(admin, "ticket", ticket["id"])["priority"] == "high"
    world.engine.dispose()


def test_the_state_needs_a_session_and_the_csrf_token(ui):
    anonymous = ui.post("/account/form-state", data={"tier": "a"})
    assert anonymous.status_code in (400, 401)  # no session: no CSRF token either
    assert ui.get("/account/choices/parent?q=x").status_code == 401
    assert ui.get("/account/choices/parent?q=x").json["error"]["code"] == "unauthorized"
    sign_in(ui, "rep")
    assert ui.post("/account/form-state", data={"tier": "a"}).status_code == 400
    assert ui.post("/account/form-state", data={"tier": "a", "csrf_token": "x"}) \
        .status_code == 400
    assert ui.get("/account/form-state").status_code == 405
    token = csrf_of(ui, "/account/new")
    ui.post("/logout", data={"csrf_token": token})
    signed_out = ui.post("/account/form-state", data={"tier": "a", "csrf_token": token})
    assert signed_out.status_code in (400, 401)


def test_the_state_follows_permissions(ui):
    rep = caller(ui, "rep")
    theirs = ui.world.service.create(rep, "account", {"name": "Theirs"})
    sign_in(ui, "rep2")
    missing = post(ui, f"/account/{theirs['id']}/form-state", {"name": "X"}, "/account/new")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    viewer = create_app(ui.world.registry, ui.world.engine).test_client()
    sign_in(viewer, "viewer")
    refused = post(viewer, "/account/form-state", {"name": "X"}, "/account")
    assert refused.status_code == 403 and refused.json["error"]["code"] == "forbidden"
    assert post(viewer, "/deal/form-state", {}, "/account").status_code == 404
    assert ui.world.service.list(rep, "account").total == 1  # asking changed nothing


def make_accounts(client, owner, count, prefix="Company"):
    service, who = client.world.service, caller(client, owner)
    return [service.create(who, "account", {"name": f"{prefix} {i:03d}"})["id"]
            for i in range(count)]


def test_many_records_get_the_picker_few_get_a_select(ui, monkeypatch):
    import web.formfields
    monkeypatch.setattr(web.formfields, "REFERENCE_CHOICES", 3)
    sign_in(ui, "rep")
    make_accounts(ui, "rep", 3)
    page = html(ui.get("/deal/new"))
    assert '<select id="f-account" name="account" required>' in page
    ids = make_accounts(ui, "rep", 1, "Extra")
    page = html(ui.get("/deal/new"))
    assert 'data-widget="picker"' in row(page, "account")
    assert 'data-url="/deal/choices/account"' in page
    assert '<input id="f-account" name="account" class="picker-id" type="text"' in page
    assert 'href="/account" target="_blank"' in row(page, "account")  # the no-JS way to look
    # the form sent back shows the chosen record by its title
    page = html(post(ui, "/deal/new", {"title": "", "account": str(ids[0])}, "/deal/new"))
    assert f'value="{ids[0]}"' in row(page, "account")
    assert '<span class="picker-current">Extra 000</span>' in row(page, "account")
    created = post(ui, "/deal/new", {"title": "T", "account": str(ids[0])}, "/deal/new")
    assert created.status_code == 302, html(created)


def test_the_picker_finds_only_readable_records(ui):
    make_accounts(ui, "rep", 25, "Mine")
    make_accounts(ui, "rep2", 3, "Other")
    sign_in(ui, "rep2")
    found = ui.get("/deal/choices/account?q=Other").json["data"]
    assert [m["title"] for m in found] == ["Other 000", "Other 001", "Other 002"]
    assert ui.get("/deal/choices/account?q=Mine").json["data"] == []
    assert all(m["title"].startswith("Other") for m in
               ui.get("/deal/choices/account?q=").json["data"])
    boss = create_app(ui.world.registry, ui.world.engine).test_client()
    sign_in(boss, "boss")
    assert len(boss.get("/deal/choices/account?q=Mine").json["data"]) == 20  # at most 20
    both = boss.get("/deal/choices/account?q=00").json["data"]
    assert {m["title"].split()[0] for m in both} == {"Mine", "Other"}
    match = boss.get("/deal/choices/account?q=Mine 007").json["data"]
    assert len(match) == 1 and match[0]["title"] == "Mine 007" and isinstance(match[0]["id"], int)


def test_the_picker_serves_reference_fields_only(ui):
    sign_in(ui, "rep")
    assert ui.get("/deal/choices/title?q=x").status_code == 404
    assert ui.get("/account/choices/manager_user?q=x").status_code == 404  # users: a select
    assert ui.get("/account/choices/nothing?q=x").status_code == 404
    assert ui.get("/deal_line/choices/product?q=x").status_code == 404
    viewer = create_app(ui.world.registry, ui.world.engine).test_client()
    sign_in(viewer, "viewer")
    assert viewer.get("/deal/choices/account?q=x").status_code == 404  # deal: not readable


def test_markup_in_titles_stays_text(ui, monkeypatch):
    import web.formfields
    monkeypatch.setattr(web.formfields, "REFERENCE_CHOICES", 1)
    sign_in(ui, "rep")
    rep = caller(ui, "rep")
    evil = "<img src=x onerror=alert(1)>"
    bad = ui.world.service.create(rep, "account", {"name": evil})
    ui.world.service.create(rep, "account", {"name": "Fine"})
    response = ui.get("/deal/choices/account?q=img")
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.json["data"] == [{"id": bad["id"], "title": evil}]
    page = html(post(ui, "/deal/new", {"title": "", "account": str(bad["id"])}, "/deal/new"))
    assert evil not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    script = ui.get("/static/forms.js").get_data(as_text=True)
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script


def test_a_new_record_form_shows_the_defaults_and_saves_what_it_shows(ui):
    sign_in(ui, "rep")
    page = html(ui.get("/account/new"))
    assert re.search(r'<input[^>]*name="active"[^>]*checked', row(page, "active"))
    assert re.search(r'<option value="c" selected', row(page, "tier"))
    # a query-string value wins over the default
    assert re.search(r'<option value="b" selected', row(html(ui.get("/account/new?tier=b")),
                                                           "tier"))
    saved = post(ui, "/account/new", {"name": "Defaults", "tier": "c", "active": "on"},
                 "/account/new")
    assert saved.status_code in (302, 303)
    record_id = int(saved.headers["Location"].rsplit("/", 1)[1])
    stored = ui.world.service.get(caller(ui, "rep"), "account", record_id)
    assert (stored["tier"], stored["active"]) == ("c", True)
    # unticked on purpose: the form saves what it showed, not the default behind it
    saved = post(ui, "/account/new", {"name": "Inactive", "tier": "c"}, "/account/new")
    record_id = int(saved.headers["Location"].rsplit("/", 1)[1])
    assert ui.world.service.get(caller(ui, "rep"), "account", record_id)["active"] is False
