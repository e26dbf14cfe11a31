"""The admin console's user management (/admin, web/admin.py): admins only, CSRF on every POST,
errors next to their fields in the admin's language, the last admin kept, every change
audited without password hashes."""

import json
import re

import pytest
import sqlalchemy as sa

from engine.errors import Conflict

from test_web_ui import csrf_of, html, sign_in
from web import create_app

GENERATED = re.compile(r'id="generated-password">([^<]+)<')


@pytest.fixture
def admin(world, monkeypatch):
    monkeypatch.setenv("CRM_SECRET_KEY", "test-secret-key")
    world.users.create("root", "pw-root", ["admin"], display_name="Root")
    world.users.create("rep", "pw-rep", ["rep"])
    app = create_app(world.registry, world.engine)
    client = app.test_client()
    client.world = world
    client.app_ = app
    return client


def other_client(admin):
    client = admin.app_.test_client()
    client.world = admin.world
    return client


def uid(client, name):
    return client.world.users.by_username(name)


def post(client, path, data, csrf_from=None):
    return client.post(path, data={**data, "csrf_token": csrf_of(client, csrf_from or path)})


def state(world):
    """Everything an admin action could change: accounts, roles, tokens, audit."""
    tables = world.service.schema.engine
    with world.engine.connect() as conn:
        return {name: sorted(tuple(str(v) for v in row) for row in conn.execute(
            sa.select(tables[name]))) for name in ("user", "user_role", "token", "audit")}


def user_audit(world, user_id=None):
    audit = world.service.schema.engine["audit"]
    query = sa.select(audit).where(audit.c.entity == "user").order_by(audit.c.id)
    if user_id is not None:
        query = query.where(audit.c.record_id == user_id)
    with world.engine.connect() as conn:
        return [(r.action, r.user_id, r.changes) for r in conn.execute(query)]


def api_token(client, username, password):
    response = client.post("/api/v1/auth/token", json={"username": username,
                                                       "password": password})
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['token']}"}


def errors_of(page: str, name: str) -> list[str]:
    return re.findall(rf'<div class="error" data-field="{name}">([^<]*)</div>', page)


def create(client, **fields):
    data = {"username": "ann", "display_name": "Ann", "email": "ann@example.com",
            "roles": ["rep"], "password": "ann-secret-1", "password2": "ann-secret-1", **fields}
    return post(client, "/admin/users/new", data)


# ---------------------------------------------------------------- who may come in

ADMIN_GETS = ("/admin", "/admin/users", "/admin/users?q=r", "/admin/users/new",
              "/admin/users/1")
ADMIN_POSTS = (("/admin/users/new", {"username": "evil", "password": "evil-pass-1",
                                     "password2": "evil-pass-1", "roles": ["admin"]}),
               ("/admin/users/1", {"display_name": "Owned", "roles": ["rep"]}),
               ("/admin/users/1/active", {"active": "0"}),
               ("/admin/users/1/password", {"password": "evil-pass-1",
                                            "password2": "evil-pass-1"}),
               ("/admin/users/1/password", {"generate": "1"}))


def test_anonymous_is_sent_to_sign_in(admin):
    for path in ADMIN_GETS:
        response = admin.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login")
    before = state(admin.world)
    for path, data in ADMIN_POSTS:
        response = post(admin, path, data, "/login")
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert state(admin.world) == before


def test_a_non_admin_gets_403_everywhere_and_changes_nothing(admin):
    sign_in(admin, "rep")
    before = state(admin.world)
    for path in ADMIN_GETS:
        response = admin.get(path)
        assert response.status_code == 403, path
        assert "root" not in html(response).lower()  # no account is shown
    token = csrf_of(admin, "/account")
    for path, data in ADMIN_POSTS:
        response = admin.post(path, data={**data, "csrf_token": token})
        assert response.status_code == 403, path
    assert admin.get("/admin/users/999").status_code == 403  # not even whether it exists
    assert state(admin.world) == before
    assert 'href="/admin/users"' not in html(admin.get("/account"))


def test_the_admin_link_shows_for_admins_only(admin):
    sign_in(admin, "root")
    page = html(admin.get("/account"))
    assert 'href="/admin/users"' in page and ">Admin<" in page


def test_every_post_needs_the_csrf_token_and_gets_are_read_only(admin):
    sign_in(admin, "root")
    before = state(admin.world)
    for path, data in ADMIN_POSTS:
        assert admin.post(path, data=data).status_code == 400, path
        assert admin.post(path, data={**data, "csrf_token": "forged"}).status_code == 400
    for path in ("/admin/users/1/active", "/admin/users/1/password"):
        assert admin.get(path + "?active=0").status_code == 405
    assert state(admin.world) == before


# ---------------------------------------------------------------- the list

def test_the_list_shows_accounts_with_role_labels_and_searches(admin):
    world = admin.world
    world.users.authenticate("rep", "pw-rep")
    world.users.create("zed", "pw", ["manager", "rep"], display_name="Zed Zhang",
                       email="zed@example.com")
    world.users.set_active(uid(admin, "zed"), False)
    sign_in(admin, "root")
    response = admin.get("/admin/users")
    page = html(response)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    for text in ("root", "Root", "rep", "Zed Zhang", "zed@example.com", "Administrator",
                 "Manager, Rep", "Active", "Disabled", "never", " UTC"):
        assert text in page, text
    found = html(admin.get("/admin/users?q=zhang"))
    assert "Zed Zhang" in found and ">rep<" not in found and ">root<" not in found
    assert "No users match." in html(admin.get("/admin/users?q=nobody"))
    post(admin, "/locale", {"locale": "zh", "next": "/admin/users"}, "/admin/users")
    chinese = html(admin.get("/admin/users"))
    for text in ("用户", "管理员", "经理, 代表", "已停用", "最近登录", "新建用户", "系统管理"):
        assert text in chinese, text


def test_the_list_pages(admin, monkeypatch):
    monkeypatch.setattr("web.admin.PAGE_SIZE", 2)
    for name in ("a1", "a2", "a3"):
        admin.world.users.create(name, "pw", ["rep"])
    sign_in(admin, "root")
    first = html(admin.get("/admin/users"))
    assert ">a1<" in first and ">a2<" in first and ">a3<" not in first
    second = html(admin.get(re.search(r'rel="next" href="([^"]+)"', first).group(1)
                            .replace("&amp;", "&")))
    assert ">a3<" in second and ">rep<" in second and ">a1<" not in second


# ---------------------------------------------------------------- creating users

def test_an_admin_creates_a_user_who_can_sign_in(admin):
    sign_in(admin, "root")
    response = create(admin, roles=["rep", "manager"])
    assert response.status_code == 302
    ann = uid(admin, "ann")
    assert response.headers["Location"] == f"/admin/users/{ann}"
    page = html(admin.get(response.headers["Location"]))
    assert "User ann was created." in page and "Manager" in page
    user = admin.world.users.get(ann)
    assert user["roles"] == ["manager", "rep"] and user["email"] == "ann@example.com"
    (action, actor, changes), = user_audit(admin.world, ann)
    assert action == "user:create" and actor == uid(admin, "root")
    assert changes["roles"] == [None, ["manager", "rep"]]
    assert "ann-secret-1" not in json.dumps(changes) and "scrypt" not in json.dumps(changes)
    newcomer = other_client(admin)
    sign_in(newcomer, "ann", "ann-secret-1")
    assert newcomer.get("/account").status_code == 200


def test_create_errors_are_shown_next_to_their_fields(admin):
    sign_in(admin, "root")
    before = state(admin.world)
    short = create(admin, password="short", password2="short")
    assert short.status_code == 422
    assert errors_of(html(short), "password") == ["must be at least 8 characters"]
    assert 'value="ann"' in html(short) and 'value="Ann"' in html(short)  # kept
    assert "short" not in html(short).replace("must be at least", "")  # never echoed
    weak = create(admin, password="password1", password2="password1")
    assert errors_of(html(weak), "password") == ["is too easy to guess"]
    same = create(admin, password="ann", password2="ann")
    assert errors_of(html(same), "password") == ["must be at least 8 characters"]
    named = create(admin, username="annabelle", password="Annabelle", password2="annabelle")
    assert errors_of(html(named), "password") == ["must not be the username"]
    mismatch = create(admin, password2="something-else")
    assert errors_of(html(mismatch), "password2") == ["the two passwords do not match"]
    taken = create(admin, username="REP")
    assert taken.status_code == 409
    assert errors_of(html(taken), "username") == ["is taken by another user"]
    role = create(admin, roles=["rep", "wizard"])
    assert role.status_code == 422 and errors_of(html(role), "roles") == ["unknown role “wizard”"]
    email = create(admin, email="not-an-address")
    assert errors_of(html(email), "email") == ["must be an email address"]
    blank = create(admin, username=" ")
    assert errors_of(html(blank), "username") == ["must be 1 to 150 characters"]
    assert "Please correct the marked fields." in html(blank)
    assert state(admin.world) == before
    post(admin, "/locale", {"locale": "zh", "next": "/admin/users/new"}, "/admin/users")
    chinese = create(admin, username="rep", password="short", password2="short")
    assert errors_of(html(chinese), "password") == ["至少需要 8 个字符"]
    assert errors_of(create(admin, username="rep").get_data(as_text=True), "username") == \
        ["已被其他用户使用"]


def test_a_generated_password_is_shown_once_and_works(admin):
    sign_in(admin, "root")
    response = create(admin, generate="1", password="", password2="")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    password = GENERATED.search(html(response)).group(1)
    assert len(password) >= 12 and "shown only this once" in html(response)
    ann = uid(admin, "ann")
    assert password not in html(admin.get(f"/admin/users/{ann}"))
    assert password not in html(admin.get("/admin/users"))
    assert password not in json.dumps(user_audit(admin.world))
    assert admin.world.users.authenticate("ann", password) == ann


def test_a_display_name_with_markup_is_escaped(admin):
    sign_in(admin, "root")
    evil = "<script>alert(1)</script>"
    assert create(admin, display_name=evil).status_code == 302
    ann = uid(admin, "ann")
    for path in ("/admin/users", f"/admin/users/{ann}"):
        page = html(admin.get(path))
        assert evil not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Content-Security-Policy" in admin.get("/admin/users").headers


# ---------------------------------------------------------------- editing users

def test_edit_display_name_email_and_roles_audited_old_and_new(admin):
    sign_in(admin, "root")
    rep = uid(admin, "rep")
    response = post(admin, f"/admin/users/{rep}", {"display_name": "Rita Rep",
                                                   "email": "rita@example.com",
                                                   "roles": ["rep", "viewer"]})
    assert response.status_code == 302
    assert "Saved." in html(admin.get(f"/admin/users/{rep}"))
    user = admin.world.users.get(rep)
    assert (user["display_name"], user["email"], user["roles"]) == (
        "Rita Rep", "rita@example.com", ["rep", "viewer"])
    entries = user_audit(admin.world, rep)
    assert entries[-2:] == [
        ("user:roles", uid(admin, "root"), {"roles": [["rep"], ["rep", "viewer"]]}),
        ("user:update", uid(admin, "root"), {"display_name": ["rep", "Rita Rep"],
                                             "email": [None, "rita@example.com"]})]
    page = html(admin.get(f"/admin/users/{rep}"))
    assert "roles changed" in page and "Rita Rep" in page
    bad = post(admin, f"/admin/users/{rep}", {"display_name": "", "email": "nope",
                                              "roles": ["rep", "ghost"]})
    assert bad.status_code == 422
    assert errors_of(html(bad), "display_name") == ["is required"]
    assert errors_of(html(bad), "email") == ["must be an email address"]
    assert errors_of(html(bad), "roles") == ["unknown role “ghost”"]
    assert admin.world.users.get(rep)["roles"] == ["rep", "viewer"]
    assert post(admin, "/admin/users/999", {"display_name": "x"},
                "/admin/users").status_code == 404


def test_an_admin_cannot_remove_their_own_admin_role_or_disable_themselves(admin):
    sign_in(admin, "root")
    root = uid(admin, "root")
    before = state(admin.world)
    own = post(admin, f"/admin/users/{root}", {"display_name": "Root!", "roles": ["rep"]})
    assert own.status_code == 409
    assert errors_of(html(own), "roles") == ["You cannot remove your own admin role."]
    off = post(admin, f"/admin/users/{root}/active", {"active": "0"})
    assert off.status_code == 409
    assert errors_of(html(off), "active") == ["You cannot disable your own account."]
    assert state(admin.world) == before
    assert admin.get("/admin/users").status_code == 200  # still an admin, still signed in


def test_the_last_active_admin_keeps_the_role(admin):
    world = admin.world
    world.users.create("deputy", "pw-deputy", ["admin"])
    root, deputy = uid(admin, "root"), uid(admin, "deputy")
    sign_in(admin, "deputy")
    # another active admin remains (the deputy): root may lose the role
    assert post(admin, f"/admin/users/{root}", {"display_name": "Root",
                                                "roles": ["rep"]}).status_code == 302
    assert world.users.get(root)["roles"] == ["rep"]
    # another admin who is disabled does not count as "another admin"
    world.users.set_roles(root, ["admin"], actor=world.users.caller(deputy))
    world.users.set_active(root, False, actor=world.users.caller(deputy))
    before = state(world)
    with pytest.raises(Conflict) as caught:  # the engine itself (no actor): the last admin
        world.users.set_roles(deputy, ["rep"])
    assert caught.value.extra["problems"] == {"roles": [("last_admin", {})]}
    assert state(world) == before
    # in the console: enabling root again is allowed
    assert post(admin, f"/admin/users/{root}/active", {"active": "1"}).status_code == 302
    assert world.users.get(root)["active"]


def test_disabling_ends_sign_in_sessions_and_api_tokens(admin):
    world = admin.world
    rep = uid(admin, "rep")
    headers = api_token(admin, "rep", "pw-rep")
    assert admin.get("/api/v1/me", headers=headers).status_code == 200
    session = other_client(admin)
    sign_in(session, "rep")
    assert session.get("/account").status_code == 200
    sign_in(admin, "root")
    before_audit = len(user_audit(world, rep))
    response = post(admin, f"/admin/users/{rep}/active", {"active": "0"})
    assert response.status_code == 302
    assert "signed out everywhere" in html(admin.get(f"/admin/users/{rep}"))
    assert admin.get("/api/v1/me", headers=headers).status_code == 401
    assert session.get("/account").status_code == 302  # the open session is over
    token = csrf_of(session, "/login")
    refused = session.post("/login", data={"username": "rep", "password": "pw-rep",
                                           "csrf_token": token})
    assert refused.status_code == 200 and "Wrong username or password." in html(refused)
    assert admin.post("/api/v1/auth/token", json={"username": "rep",
                                                  "password": "pw-rep"}).status_code == 401
    entries = user_audit(world, rep)
    assert len(entries) == before_audit + 1
    assert entries[-1] == ("user:disable", uid(admin, "root"), {"active": [True, False]})
    assert post(admin, f"/admin/users/{rep}/active", {"active": "1"}).status_code == 302
    assert admin.get("/api/v1/me", headers=headers).status_code == 401  # old token stays dead
    assert admin.get("/api/v1/me", headers=api_token(admin, "rep", "pw-rep")).status_code == 200
    assert user_audit(world, rep)[-1][0] == "user:enable"


# ---------------------------------------------------------------- passwords

def test_reset_password_typed_twice(admin):
    world = admin.world
    rep = uid(admin, "rep")
    headers = api_token(admin, "rep", "pw-rep")
    sign_in(admin, "root")
    mismatch = post(admin, f"/admin/users/{rep}/password", {"password": "new-secret-9",
                                                            "password2": "new-secret-8"})
    assert mismatch.status_code == 422
    assert errors_of(html(mismatch), "password2") == ["the two passwords do not match"]
    short = post(admin, f"/admin/users/{rep}/password", {"password": "x", "password2": "x"})
    assert errors_of(html(short), "password") == ["must be at least 8 characters"]
    assert world.users.authenticate("rep", "pw-rep") == rep
    done = post(admin, f"/admin/users/{rep}/password", {"password": "new-secret-9",
                                                        "password2": "new-secret-9"})
    assert done.status_code == 302
    assert world.users.authenticate("rep", "pw-rep") is None
    assert world.users.authenticate("rep", "new-secret-9") == rep
    assert admin.get("/api/v1/me", headers=headers).status_code == 401
    action, actor, changes = user_audit(world, rep)[-1]
    assert (action, actor, changes) == ("user:password", uid(admin, "root"), {})
    text = json.dumps(user_audit(world))
    assert "scrypt" not in text and "new-secret-9" not in text


def test_reset_password_generated_and_own_reset_keeps_the_session(admin):
    world = admin.world
    rep, root = uid(admin, "rep"), uid(admin, "root")
    sign_in(admin, "root")
    response = post(admin, f"/admin/users/{rep}/password", {"generate": "1"})
    assert response.status_code == 200
    password = GENERATED.search(html(response)).group(1)
    assert world.users.authenticate("rep", password) == rep
    own = post(admin, f"/admin/users/{root}/password", {"password": "root-secret-2",
                                                         "password2": "root-secret-2"})
    assert own.status_code == 302
    assert admin.get("/admin/users").status_code == 200  # still signed in
    assert world.users.authenticate("root", "root-secret-2") == root
