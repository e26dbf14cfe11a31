"""The server-rendered UI: sign-in sessions, CSRF, lists, forms, transitions, i18n, escaping."""

import re
import urllib.parse

import pytest

from web import create_app

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
COOKIE = "crm_session"


@pytest.fixture
def ui(world, monkeypatch):
    monkeypatch.setenv("CRM_SECRET_KEY", "test-secret-key")
    world.users.create("rep", "pw-rep", ["rep"])
    world.users.create("viewer", "pw-viewer", ["viewer"])
    world.users.create("boss", "pw-boss", ["manager"])
    app = create_app(world.registry, world.engine)
    client = app.test_client()
    client.world = world
    return client


def csrf_of(client, path="/login", **kwargs):
    page = client.get(path, **kwargs)
    match = CSRF.search(page.get_data(as_text=True))
    assert match, page.get_data(as_text=True)
    return match.group(1)


def sign_in(client, username, password=None, **kwargs):
    token = csrf_of(client, "/login")
    response = client.post("/login", data={"username": username,
                                           "password": password or f"pw-{username}",
                                           "csrf_token": token}, **kwargs)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def post(client, path, data, csrf_from):
    """POST a UI form with the CSRF token read from the page `csrf_from`."""
    return client.post(path, data={**data, "csrf_token": csrf_of(client, csrf_from)})


def html(response) -> str:
    return response.get_data(as_text=True)


def create_account(client, name="Acme", **fields):
    response = post(client, "/account/new", {"name": name, **fields}, "/account/new")
    assert response.status_code == 302, html(response)
    match = re.fullmatch(r"/account/(\d+)", response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def test_anonymous_pages_redirect_to_sign_in(ui):
    for path in ("/", "/account", "/account/new", "/account/1"):
        response = ui.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")
    login = ui.get("/login")
    assert login.status_code == 200 and 'name="password"' in html(login)
    assert 'href="/account"' not in html(login)


def test_wrong_password_shows_an_error_and_is_rate_limited(ui):
    token = csrf_of(ui)
    wrong = ui.post("/login", data={"username": "rep", "password": "nope", "csrf_token": token})
    assert wrong.status_code == 200
    assert "Wrong username or password." in html(wrong)
    assert ui.get("/account").status_code == 302  # still signed out
    for _ in range(9):
        ui.post("/login", data={"username": "rep", "password": "nope", "csrf_token": token})
    limited = ui.post("/login", data={"username": "rep", "password": "pw-rep",
                                      "csrf_token": token})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0


def test_sign_in_shows_only_readable_entities(ui):
    response = sign_in(ui, "viewer")
    assert response.headers["Location"] == "/"
    assert ui.get("/").headers["Location"] == "/account"
    page = html(ui.get("/account"))
    assert 'href="/account"' in page and "Sign out" in page
    for other in ("deal", "product", "note"):
        assert f'href="/{other}"' not in page
    assert ui.get("/deal").status_code in (403, 404)  # not readable: refused, not listed

    rep = create_app(ui.world.registry, ui.world.engine).test_client()
    sign_in(rep, "rep")
    page = html(rep.get("/account"))
    for name in ("account", "deal", "product", "note"):
        assert f'href="/{name}"' in page
    assert 'href="/deal_line"' not in page  # a child entity is reached through its parent


def test_session_cookie_flags_and_next_redirect(ui):
    assert ui.get("/account?q=x").headers["Location"] == "/login?next=/account?q%3Dx"
    token = csrf_of(ui)
    response = ui.post("/login", data={"username": "rep", "password": "pw-rep",
                                       "csrf_token": token, "next": "/account?q=x"})
    assert response.headers["Location"] == "/account?q=x"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    other = create_app(ui.world.registry, ui.world.engine).test_client()
    token = csrf_of(other)
    response = other.post("/login", data={"username": "rep", "password": "pw-rep",
                                          "csrf_token": token, "next": "//evil.example"},
                          base_url="https://localhost")
    assert response.headers["Location"] == "/"
    assert "Secure" in response.headers["Set-Cookie"]


REDIRECTS_OFF_SITE = ["//evil.example", "/\t/evil.example", "/\n/evil.example",
                      "/\r\nSet-Cookie: x=1", "/\\evil.example", "\\\\evil.example",
                      "https://evil.example/", "javascript:alert(1)", "/ /evil.example",
                      "/\x00/evil.example", "/\u3000/evil.example", "/api/v1/me", "evil"]


def test_next_never_leads_off_the_site_nor_to_a_500(ui):
    from web.redirects import local_path
    assert [t for t in REDIRECTS_OFF_SITE if local_path(t) is not None] == []
    assert local_path("/account?q=x&sort=-name#top") == "/account?q=x&sort=-name#top"
    client = create_app(ui.world.registry, ui.world.engine).test_client()
    for target in REDIRECTS_OFF_SITE[:3]:  # posted with the sign-in form (a password check each)
        token = csrf_of(client, "/account") if target != REDIRECTS_OFF_SITE[0] else \
            csrf_of(client)  # signed in after the first
        response = client.post("/login", data={"username": "rep", "password": "pw-rep",
                                               "csrf_token": token, "next": target})
        assert (response.status_code, response.headers["Location"]) == (302, "/"), target
    for target in REDIRECTS_OFF_SITE:  # signed in: GET /login?next=... and the language switch
        link = client.get("/login?next=" + urllib.parse.quote(target, safe=""))
        assert (link.status_code, link.headers["Location"]) == (302, "/"), target
        switched = post(client, "/locale", {"locale": "zh", "next": target}, "/account")
        assert (switched.status_code, switched.headers["Location"]) == (302, "/"), target


def test_post_without_or_with_a_wrong_csrf_token_is_400(ui):
    assert ui.post("/login", data={"username": "rep", "password": "pw-rep"}).status_code == 400
    sign_in(ui, "rep")
    refused = ui.post("/account/new", data={"name": "NoToken"})
    assert refused.status_code == 400
    assert ui.post("/account/new", data={"name": "Bad", "csrf_token": "x"}).status_code == 400
    assert ui.post("/logout").status_code == 400
    assert ui.world.service.list(ui.world.user("rep", "rep"), "account").total == 0
    assert "text/html" in refused.headers["Content-Type"]


def test_create_through_the_form(ui):
    sign_in(ui, "rep")
    form = html(ui.get("/account/new"))
    assert 'name="name"' in form and '<textarea id="f-notes"' in form
    assert 'type="number"' in form and 'type="date"' in form
    assert 'type="datetime-local"' in form and 'type="checkbox"' in form
    assert '<select id="f-tier"' in form and '<select id="f-parent"' in form
    for skipped in ("open_deals", "vip_label", "credit_limit", "secret"):  # computed, read-only
        assert f'name="{skipped}"' not in form                           # or hidden for reps
    record_id = create_account(ui, "Acme", tier="b", employees="12", founded="2001-02-03",
                               active="true", last_contact="2024-05-06T07:08")
    page = html(ui.get(f"/account/{record_id}"))
    assert "Acme" in page and "2001-02-03" in page and "2024-05-06 07:08 UTC" in page
    stored = ui.world.service.get(ui.world.user("rep", "rep"), "account", record_id)
    assert stored["tier"] == "b" and stored["employees"] == 12 and stored["active"] is True
    listing = html(ui.get("/account"))
    assert f'href="/account/{record_id}"' in listing and "Acme" in listing
    # a reference select lists the readable records by their title
    assert f'<option value="{record_id}">Acme</option>' in html(ui.get("/account/new"))


def test_validation_errors_are_shown_next_to_their_field(ui):
    sign_in(ui, "rep")
    response = post(ui, "/account/new", {"name": "", "email": "not-an-email"}, "/account/new")
    assert response.status_code == 422
    page = html(response)
    name_block = page.split('id="field-name"')[1].split('class="field')[0]
    assert "is required" in name_block
    email_block = page.split('id="field-email"')[1].split('class="field')[0]
    assert "must be an email address" in email_block and 'value="not-an-email"' in email_block
    # a rule that is not about one field is shown at the top
    response = post(ui, "/account/new", {"name": "X", "discount": "60"}, "/account/new")
    assert response.status_code == 422
    top = html(response).split('class="record-form"')[0].split('role="alert"')[1]
    assert "Discount above 50% needs a manager" in top


def test_edit_form_and_history(ui):
    sign_in(ui, "rep")
    record_id = create_account(ui, "Acme")
    page = html(ui.get(f"/account/{record_id}"))
    assert 'name="version" value="1"' in page and "History" in page and "created" in page
    response = post(ui, f"/account/{record_id}", {"name": "Acme Ltd", "tier": "c",
                                                  "active": "true", "version": "1"},
                    f"/account/{record_id}")
    assert response.status_code == 302
    page = html(ui.get(f"/account/{record_id}"))
    timeline = page.split("History")[1]
    assert "changed" in timeline and "Acme Ltd" in timeline and "Acme" in timeline
    assert 'name="version" value="2"' in page
    stale = post(ui, f"/account/{record_id}", {"name": "Again", "tier": "c", "active": "true",
                                               "version": "1"}, f"/account/{record_id}")
    assert stale.status_code == 409 and "changed by someone else" in html(stale)
    invalid = post(ui, f"/account/{record_id}", {"name": "", "tier": "c", "active": "true",
                                                 "version": "2"}, f"/account/{record_id}")
    assert invalid.status_code == 422
    assert "is required" in html(invalid).split('id="field-name"')[1].split('class="field')[0]


def test_fire_a_transition_from_the_record_page(ui):
    sign_in(ui, "rep")
    account_id = create_account(ui, "Acme")
    response = post(ui, "/deal/new", {"title": "Big one", "account": str(account_id),
                                      "amount": "100.50"}, "/deal/new")
    assert response.status_code == 302, html(response)
    deal_url = response.headers["Location"]
    page = html(ui.get(deal_url))
    assert "Open" in page and f"{deal_url}/transitions/win" in page
    assert f"{deal_url}/transitions/lose" in page and 'name="stage"' not in page
    assert "Acme" in page  # the reference shown by its title
    win = post(ui, f"{deal_url}/transitions/win", {"version": "1"}, deal_url)
    assert win.status_code == 302 and win.headers["Location"] == deal_url
    page = html(ui.get(deal_url))
    assert '<span class="state" title="State">Won</span>' in page
    assert "/transitions/" not in page  # won is final
    assert "<strong>Win</strong>" in page.split("History")[1]  # the transition, by its label
    again = post(ui, f"{deal_url}/transitions/lose", {"version": "2"}, deal_url)
    assert again.status_code == 409
    listing = html(ui.get("/deal"))
    assert "Big one" in listing and "Acme" in listing  # reference column shows the title


def test_list_search_sort_and_paging(ui):
    sign_in(ui, "rep")
    rep = ui.world.user("rep", "rep")
    for i in range(55):
        ui.world.service.create(rep, "account", {"name": f"Company {i:02d}", "tier": "a",
                                                 "tax_id": "T"})
    page = html(ui.get("/account"))
    assert "55 records" in page and 'href="/account?sort=name"' in page
    assert '<td>A</td>' in page  # enum shown by its option label
    next_link = re.search(r'rel="next" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    second = html(ui.get(next_link))
    assert "Company 54" in second and "Company 00" not in second
    descending = html(ui.get("/account?sort=-name"))
    assert descending.index("Company 54") < descending.index("Company 53")
    found = html(ui.get("/account?q=Company+07"))
    assert "Company 07" in found and "Company 08" not in found
    assert ui.get("/account?sort=secret").status_code == 400


def test_language_switch(ui):
    sign_in(ui, "rep")
    assert "Sign out" in html(ui.get("/account"))
    response = post(ui, "/locale", {"locale": "zh", "next": "/account"}, "/account")
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    page = html(ui.get("/account"))
    assert "退出登录" in page and "客户" in page and "搜索" in page and 'lang="zh-CN"' in page
    form = post(ui, "/account/new", {"name": ""}, "/account/new")
    assert "必填" in html(form)  # engine messages follow the language too
    # the session's choice wins over the browser's Accept-Language
    post(ui, "/locale", {"locale": "en"}, "/account")
    page = html(ui.get("/account", headers={"Accept-Language": "zh-CN"}))
    assert "Sign out" in page and "退出登录" not in page


def test_accept_language_is_used_without_a_session_choice(ui):
    page = html(ui.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"}))
    assert "登录" in page and "用户名" in page


def test_stored_markup_is_shown_as_text(ui):
    sign_in(ui, "rep")
    record_id = create_account(ui, "<script>alert(1)</script>", notes="<b>bold</b>")
    for path in ("/account", f"/account/{record_id}"):
        page = html(ui.get(path))
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>bold</b>" not in html(ui.get(f"/account/{record_id}"))


def test_logout_revokes_the_session(ui):
    sign_in(ui, "rep")
    assert ui.get("/account").status_code == 200
    old = ui.get_cookie(COOKIE).value
    token = csrf_of(ui, "/account")
    response = ui.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert ui.get("/account").status_code == 302
    ui.set_cookie(COOKIE, old)  # replaying the old cookie: its token was revoked
    replay = ui.get("/account")
    assert replay.status_code == 302 and replay.headers["Location"].startswith("/login")


def test_each_sign_in_starts_a_fresh_session(ui):
    sign_in(ui, "rep")
    first = ui.get_cookie(COOKIE).value
    sign_in_again = ui.get("/login")
    assert sign_in_again.status_code == 302  # already signed in
    other = create_app(ui.world.registry, ui.world.engine).test_client()
    sign_in(other, "rep")
    assert other.get_cookie(COOKIE).value != first


def test_error_pages_are_html_for_the_ui_and_json_for_the_api(ui):
    sign_in(ui, "rep")
    missing = ui.get("/account/999")
    assert missing.status_code == 404 and "text/html" in missing.headers["Content-Type"]
    assert ui.get("/nowhere").status_code == 404
    assert ui.get("/deal_line").status_code == 404
    nested = ui.get("/a/b/c/d")
    assert nested.status_code == 404 and "text/html" in nested.headers["Content-Type"]
    api = ui.get("/api/v1/nothing/here/at/all")  # the UI cookie is no API token
    assert api.status_code == 401 and api.json["error"]["code"] == "unauthorized"
    assert ui.put("/api/v1/account").json["error"]["code"] in ("method_not_allowed",
                                                                "unauthorized")
    assert "Set-Cookie" not in ui.get("/api/v1/me").headers  # the API never uses the cookie
    assert ui.get("/static/ui.css").status_code == 200


def test_secret_key_from_the_environment_or_kept_in_the_site_folder(tmp_path, monkeypatch):
    from web.session import secret_key
    monkeypatch.setenv("CRM_SECRET_KEY", "from-env")
    assert secret_key(str(tmp_path)) == "from-env"
    monkeypatch.delenv("CRM_SECRET_KEY")
    first = secret_key(str(tmp_path))
    path = tmp_path / ".crm" / "secret_key"
    assert path.read_text().strip() == first and len(first) > 40
    assert (path.stat().st_mode & 0o777) == 0o600
    assert secret_key(str(tmp_path)) == first  # kept across restarts
    assert secret_key(None) != secret_key(None)  # no folder: random per process


def test_lines_are_shown_as_a_read_only_table(ui):
    from engine.records.access import SYSTEM
    sign_in(ui, "rep")
    rep = ui.world.user("rep", "rep")
    product = ui.world.service.create(SYSTEM, "product", {"name": "Widget <x>"})
    account = ui.world.service.create(rep, "account", {"name": "Acme"})
    deal = ui.world.service.create(rep, "deal", {
        "title": "Lines deal", "account": account["id"],
        "lines": [{"product": product["id"], "quantity": 2, "unit_price": "10"}]})
    page = html(ui.get(f"/deal/{deal['id']}"))
    assert "Widget &lt;x&gt;" in page and "<td>20.00</td>" in page
    form = page.split('class="record-form"')[1]
    # the form edits the lines (tests/test_web_lines.py); computed values are no inputs there
    assert 'name="lines[0].quantity"' in form and 'name="lines[0].total"' not in form
    assert 'name="number"' not in form


def test_notification_bell(ui):
    sign_in(ui, "rep")
    rep = ui.world.users.caller(ui.world.users.by_username("rep"))
    with ui.world.engine.begin() as conn:
        table = ui.world.service.schema.engine["notification"]
        import datetime as dt
        conn.execute(table.insert().values(user_id=rep.user_id, message={"en": "<b>Call back</b>",
                                                                          "zh": "回电"},
                                           created_at=dt.datetime.now(dt.timezone.utc)))
    home = html(ui.get("/account"))
    assert '<span class="badge">1</span>' in home
    listing = html(ui.get("/notifications"))
    assert "&lt;b&gt;Call back&lt;/b&gt;" in listing
    response = post(ui, "/notifications/read", {}, "/notifications")
    assert response.status_code == 302
    assert 'class="badge"' not in html(ui.get("/account"))


def test_a_count_rollup_reads_as_a_whole_number(ui):
    from decimal import Decimal

    from web.common import display
    account = ui.world.registry.entities["account"]
    with ui.application.test_request_context():
        assert display(account, "open_deals", Decimal("2.00"), {}, "en") == "2"
        assert display(account, "deal_total", Decimal("2.50"), {}, "en") == "2.50"


def test_the_session_cookie_never_opens_the_api_and_users_revoke_their_own_sessions(ui):
    client = create_app(ui.world.registry, ui.world.engine).test_client()
    sign_in(client, "rep")
    app = client.application
    cookie = client.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session"))
    stored = app.session_interface.get_signing_serializer(app).loads(cookie.value)
    # what the cookie carries is a session token: the JSON API refuses it
    refused = client.get("/api/v1/me", headers={"Authorization": f"Bearer {stored['token']}"})
    assert refused.status_code == 401
    api_token = client.post("/api/v1/auth/token", json={"username": "rep", "password": "pw-rep"}
                            ).json["token"]
    bearer = {"Authorization": f"Bearer {api_token}"}
    listed = client.get("/api/v1/auth/tokens", headers=bearer).json["data"]
    assert [(t["kind"], t["current"]) for t in listed] == [("api", True), ("session", False)]
    page = html(client.get("/sessions"))
    assert "Browser session" in page and "API token" in page and "this one" in page
    # revoking the API token from the page: it stops working at once
    token_id = listed[0]["id"]
    assert post(client, f"/sessions/{token_id}/revoke", {}, "/sessions").status_code == 302
    assert client.get("/api/v1/me", headers=bearer).status_code == 401
    other = create_app(ui.world.registry, ui.world.engine).test_client()
    sign_in(other, "boss")  # nobody revokes another user's session
    assert post(other, f"/sessions/{listed[1]['id']}/revoke", {}, "/sessions").status_code == 404
    # revoking this very session signs out
    session_id = listed[1]["id"]
    done = post(client, f"/sessions/{session_id}/revoke", {}, "/sessions")
    assert done.status_code == 302 and done.headers["Location"] == "/login"
    assert client.get("/account").status_code == 302
