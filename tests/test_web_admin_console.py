"""The admin console's site, audit, webhook, schedule and notification pages (web/admin_console.py,
web/admin_site.py): admins only and nothing written for anyone else, filters checked and named,
keyset pages, the migration plan with refused steps and row counts applied only after
confirmation, audited, and served at once."""

import datetime as dt
import re
import shutil

import pytest
import sqlalchemy as sa

from conftest import BARE_ROOT, RECORDS_SITE, World
from pgdb import temporary_database
from test_web_ui import csrf_of, html, sign_in
from web import create_app

UTC = dt.timezone.utc
NIGHTLY = """
automation: nightly_touch
label: {en: Nightly check, zh: 夜间检查}
entity: account
when: {schedule: every 1h}
do:
  - set: {notes: "'checked'"}
"""


def make_site(folder):
    shutil.copytree(RECORDS_SITE, folder)
    (folder / "automations").mkdir(exist_ok=True)
    (folder / "automations" / "nightly_touch.yaml").write_text(NIGHTLY, encoding="utf-8")
    return folder


def make_client(world, monkeypatch):
    monkeypatch.setenv("CRM_SECRET_KEY", "test-secret-key")
    app = create_app(world.registry, world.engine)
    app.secret_key = "test-secret-key"  # clients made in a module fixture outlive monkeypatch
    app.config["CRM_CONTENT_ROOT"] = BARE_ROOT
    client = app.test_client()
    client.world, client.app_ = world, app
    return client


def add_users(world):
    world.users.create("root", "pw-root", ["admin"], display_name="Root")
    world.users.create("rep", "pw-rep", ["rep"], display_name="Rita Rep")
    world.users.create("mgr", "pw-mgr", ["manager"], display_name="Max Manager")


def tables(world):
    return world.service.schema.engine


def insert(world, name, **values):
    with world.engine.begin() as conn:
        return conn.execute(tables(world)[name].insert().values(**values)).inserted_primary_key[0]


def everything(world):
    """Every row of every table: what a refused admin action must leave as it was."""
    with world.engine.connect() as conn:
        names = sorted(sa.inspect(conn).get_table_names())
        return {name: sorted(tuple(str(v) for v in row)
                             for row in conn.execute(sa.text(f'SELECT * FROM "{name}"')))
                for name in names}


def errors_of(page, name):
    return re.findall(rf'<div class="error" data-field="{name}">([^<]*)</div>', page)


def rows_of(page):
    return page.count("<tr") - 1 if "<tbody>" in page else 0


# ---------------------------------------------------------------- one world for the read pages

@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_url(request, tmp_path_factory):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('console') / 'test.db'}"
        return
    server = request.getfixturevalue("postgres_server_url")
    with temporary_database(server) as url:
        yield url


@pytest.fixture(scope="module")
def shared(shared_url, tmp_path_factory):
    """A site with records, audit entries, webhook messages, ticks and notifications."""
    world = World(shared_url, site=make_site(tmp_path_factory.mktemp("site") / "site"))
    add_users(world)
    rep, mgr = world.user("rep", "rep"), world.user("mgr", "manager")
    acme = world.service.create(rep, "account", {"name": "Acme"})
    world.service.create(rep, "account", {"name": "Beta"})
    world.service.update(mgr, "account", acme["id"], {"name": "Acme Ltd"}, acme["version"])
    now = dt.datetime.now(UTC)
    world.ids = {"acme": acme["id"], "root": world.users.by_username("root"),
                 "rep": rep.user_id, "mgr": mgr.user_id}
    common = {"automation": "to_erp", "secret_env": "K", "body": '{"record": {"id": 1}}',
              "created_at": now - dt.timedelta(hours=1)}
    world.ids["pending"] = insert(world, "outbox", url="https://erp.example.com/pending",
                                  next_attempt_at=now + dt.timedelta(minutes=5), attempts=1,
                                  **common)
    insert(world, "webhook_delivery", outbox_id=world.ids["pending"], at=now, status=500,
           error="HTTP 500", duration_ms=42)
    world.ids["delivered"] = insert(world, "outbox", url="https://erp.example.com/ok",
                                    next_attempt_at=now, attempts=1, delivered_at=now, **common)
    insert(world, "webhook_delivery", outbox_id=world.ids["delivered"], at=now, status=200,
           duration_ms=7)
    tick = now.replace(minute=0, second=0, microsecond=0)
    insert(world, "automation_tick", automation="nightly_touch", tick_at=tick, started_at=tick,
           finished_at=tick + dt.timedelta(seconds=3), matched=2, failed=1)
    insert(world, "automation_failure", automation="nightly_touch", tick_at=tick,
           entity="account", record_id=acme["id"], error="notes: must be at most 5 characters",
           at=tick + dt.timedelta(seconds=1))
    insert(world, "notification", user_id=rep.user_id, title={"en": "Overdue", "zh": "超期"},
           message={"en": "Ticket overdue", "zh": "工单已超期"}, entity="account",
           record_id=acme["id"], created_at=now)
    insert(world, "notification", user_id=mgr.user_id, message={"en": "Seen it"},
           created_at=now - dt.timedelta(minutes=1), read_at=now)
    yield world
    world.engine.dispose()


@pytest.fixture(scope="module")
def admin(shared):
    """One signed-in admin for the read pages (signing in costs a password hash)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        client = make_client(shared, monkeypatch)
        sign_in(client, "root")
    return client


READ_PAGES = ("/admin/site", "/admin/audit", "/admin/webhooks", "/admin/webhooks/1",
              "/admin/schedules", "/admin/schedules/nightly_touch", "/admin/notifications")


def test_every_page_opens_for_an_admin_in_both_languages(shared, admin):
    for path in READ_PAGES:
        response = admin.get(path)
        assert response.status_code == 200, (path, html(response))
        assert response.headers["Cache-Control"] == "no-store"
        assert 'aria-current="page"' in html(response)  # its tab is marked
    chinese = make_client(shared, pytest.MonkeyPatch())
    chinese.set_cookie("crm_session", admin.get_cookie("crm_session").value)
    token = csrf_of(chinese, "/admin/site")
    chinese.post("/locale", data={"locale": "zh", "csrf_token": token})
    page = html(chinese.get("/admin/schedules"))
    assert "定时任务" in page and "夜间检查" in page and "每 3600 秒" in page


def test_a_non_admin_gets_403_and_nothing_is_written(shared, monkeypatch):
    client = make_client(shared, monkeypatch)
    for path in READ_PAGES:  # signed out: to the sign-in page
        assert client.get(path).headers["Location"].startswith("/login")
    sign_in(client, "rep")
    before = everything(shared)
    for path in READ_PAGES + ("/admin/webhooks/999",):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "erp.example.com" not in html(response)
    token = csrf_of(client, "/account")
    for path in (f"/admin/webhooks/{shared.ids['pending']}/retry", "/admin/site/migrate"):
        response = client.post(path, data={"csrf_token": token, "confirm": "1",
                                           "allow_data_loss": "1", "plan": "x"})
        assert response.status_code == 403, path
    assert everything(shared) == before
    assert 'href="/admin/audit"' not in html(client.get("/account"))


def test_the_site_page_shows_pack_versions_and_an_up_to_date_database(admin):
    page = html(admin.get("/admin/site"))
    assert "records_test" in page and "test_site" not in page
    assert "The database matches the configuration in the site folder." in page
    assert "Configurations applied" in page and "#1" in page


# ---------------------------------------------------------------- audit log

def test_the_audit_log_filters_by_user_entity_record_and_action(shared, admin):
    ids = shared.ids
    page = html(admin.get("/admin/audit"))
    assert "Rita Rep" in page and "Max Manager" in page
    assert f'href="/account/{ids["acme"]}"' in page  # entries link to their record
    assert "name: Acme → Acme Ltd" in page

    page = html(admin.get("/admin/audit?user=MGR"))  # usernames in any case
    assert rows_of(page) == 1 and "name: Acme → Acme Ltd" in page
    page = html(admin.get(f"/admin/audit?entity=account&record={ids['acme']}"))
    assert rows_of(page) == 2 and "Beta" not in page
    page = html(admin.get("/admin/audit?entity=account&action=create"))
    assert rows_of(page) == 2
    page = html(admin.get("/admin/audit?entity=user"))  # the accounts' own audit
    assert rows_of(page) == 3 and f'href="/admin/users/{ids["rep"]}"' in page


def test_the_audit_log_pages_by_keyset(shared, admin, monkeypatch):
    import web.admin_console
    monkeypatch.setattr(web.admin_console, "PAGE_SIZE", 2)
    seen = []
    url = "/admin/audit?entity=account"
    while url:
        page = html(admin.get(url))
        seen += re.findall(r'<a class="subject" href="/account/(\d+)">', page)
        found = re.search(r'<a rel="next" href="([^"]+)"', page)
        url = found.group(1).replace("&amp;", "&") if found else None
        assert url is None or "entity=account" in url
    assert len(seen) == 3  # two creations and one change, each once


def test_date_filters_are_days_in_the_browsers_time_zone(shared, admin):
    late = dt.datetime(2021, 3, 1, 23, 30, tzinfo=UTC)  # 2 March 07:30 in Shanghai
    insert(shared, "audit", entity="account", record_id=shared.ids["acme"], action="update",
           user_id=shared.ids["rep"], at=late, changes={"notes": [None, "late"]})
    utc = html(admin.get("/admin/audit?from=2021-03-02&to=2021-03-02"))
    shanghai = html(admin.get("/admin/audit?from=2021-03-02&to=2021-03-02&tz=Asia/Shanghai"))
    assert "late" not in utc and rows_of(utc) == 0
    assert "notes: ∅ → late" in shanghai and rows_of(shanghai) == 1
    assert 'datetime="2021-03-01T23:30:00Z"' in shanghai  # the browser shows it in its zone
    march = html(admin.get("/admin/audit?from=2021-03-01&to=2021-03-01"))
    assert rows_of(march) == 1


BAD_FILTERS = [
    ("record=12x&entity=account", "record", "must be a record number (digits only)"),
    ("record=5", "record", "choose the kind of record too"),
    ("user=nobody", "user", "there is no user &#39;nobody&#39;"),
    ("from=2024-13-01", "from", "must be a date (YYYY-MM-DD)"),
    ("from=2024-05-02&to=2024-05-01", "to", "must not be before the start date"),
    ("tz=Mars/Olympus", "tz", "unknown time zone &#39;Mars/Olympus&#39;"),
    ("entity=Robert%27);DROP", "entity", "unknown kind of record &#39;Robert&#39;);DROP&#39;"),
    ("after=yesterday", "after", "This page link is not valid any more; start from the first page."),
    ("after=2026-01-01T00:00:00%2B00:00~" + "9" * 30, "after",
     "This page link is not valid any more; start from the first page."),
]


def test_bad_audit_filters_are_400_naming_the_field(admin):
    for query, field, message in BAD_FILTERS:
        response = admin.get(f"/admin/audit?{query}")
        assert response.status_code == 400, query
        page = html(response)
        assert errors_of(page, field) == [message], query
        assert "Please correct the marked filters." in page and rows_of(page) == 0


# ---------------------------------------------------------------- webhooks

def test_webhook_messages_with_their_attempts_and_status_filter(shared, admin):
    ids = shared.ids
    page = html(admin.get("/admin/webhooks"))
    assert "https://erp.example.com/pending" in page and "HTTP 500" in page
    page = html(admin.get("/admin/webhooks?status=delivered"))
    assert "erp.example.com/ok" in page and "erp.example.com/pending" not in page
    page = html(admin.get("/admin/webhooks?status=pending&automation=to_erp"))
    assert "erp.example.com/pending" in page and "erp.example.com/ok" not in page
    response = admin.get("/admin/webhooks?status=lost")
    assert response.status_code == 400
    assert errors_of(html(response), "status") == ["is not one of the choices"]
    page = html(admin.get(f"/admin/webhooks/{ids['pending']}"))
    assert "42 ms" in page and "Retry now" in page and "&#34;record&#34;" in page
    assert "Retry now" not in html(admin.get(f"/admin/webhooks/{ids['delivered']}"))
    assert admin.get("/admin/webhooks/999999").status_code == 404


def test_retry_now_reopens_a_given_up_message_and_is_audited(shared, admin):
    long_ago = dt.datetime(2020, 1, 1, tzinfo=UTC)
    message = insert(shared, "outbox", automation="to_erp", url="https://erp.example.com/gone",
                     secret_env="K", body="{}", created_at=long_ago, next_attempt_at=long_ago,
                     attempts=8, given_up_at=long_ago)
    path = f"/admin/webhooks/{message}"
    response = admin.post(path + "/retry", data={"csrf_token": csrf_of(admin, path)})
    assert response.status_code == 302
    assert "the background worker sends it" in html(admin.get(path))
    outbox, audit = tables(shared)["outbox"], tables(shared)["audit"]
    with shared.engine.connect() as conn:
        row = conn.execute(sa.select(outbox).where(outbox.c.id == message)).one()
        entries = conn.execute(sa.select(audit).where(audit.c.entity == "crm.webhook",
                                                      audit.c.record_id == message)).all()
    assert row.given_up_at is None and row.next_attempt_at > long_ago
    assert [(e.action, e.user_id) for e in entries] == [("webhook:retry", shared.ids["root"])]
    assert entries[0].changes["given_up_at"] == ["2020-01-01T00:00:00+00:00", None]
    # picked up by the delivery run, like any due message
    due = shared.service.webhooks.outbox
    with shared.engine.connect() as conn:
        assert conn.execute(sa.select(due.c.id).where(
            due.c.id == message, due.c.next_attempt_at <= dt.datetime.now(UTC))).first()
    page = html(admin.get(f"/admin/audit?entity=crm.webhook&record={message}"))
    assert "retry requested" in page and f'href="/admin/webhooks/{message}"' in page

    delivered = shared.ids["delivered"]
    before = everything(shared)
    path = f"/admin/webhooks/{delivered}"
    response = admin.post(path + "/retry", data={"csrf_token": csrf_of(admin, path)},
                          follow_redirects=True)
    assert "This message was delivered already." in html(response)
    assert everything(shared) == before
    token = csrf_of(admin, path)
    assert admin.post("/admin/webhooks/999999/retry", data={"csrf_token": token}) \
        .status_code == 404
    assert admin.post(path + "/retry").status_code == 400  # no CSRF token
    assert everything(shared) == before


# ---------------------------------------------------------------- schedules, notifications

def test_schedules_show_the_last_run_and_failures(shared, admin):
    page = html(admin.get("/admin/schedules"))
    assert "Nightly check" in page and "every 3600 seconds" in page
    assert 'class="has-failures"' in page
    page = html(admin.get("/admin/schedules/nightly_touch"))
    assert "notes: must be at most 5 characters" in page
    assert f"/admin/audit?entity=account&amp;record={shared.ids['acme']}" in page
    assert admin.get("/admin/schedules/no_such").status_code == 404


def test_notifications_sent_filter_by_recipient_and_unread(shared, admin):
    page = html(admin.get("/admin/notifications"))
    assert "Ticket overdue" in page and "Seen it" in page and "Overdue" in page
    assert f'href="/account/{shared.ids["acme"]}"' in page
    page = html(admin.get("/admin/notifications?unread=1"))
    assert "Ticket overdue" in page and "Seen it" not in page
    page = html(admin.get("/admin/notifications?user=mgr"))
    assert "Seen it" in page and "Ticket overdue" not in page
    response = admin.get("/admin/notifications?user=ghost")
    assert response.status_code == 400
    assert errors_of(html(response), "user") == ["there is no user &#39;ghost&#39;"]


# ---------------------------------------------------------------- migrations

@pytest.fixture
def fresh(database_url, tmp_path, monkeypatch):
    world = World(database_url, site=make_site(tmp_path / "site"))
    add_users(world)
    rep = world.user("rep", "rep")
    for name in ("Acme", "Beta", "Gamma"):
        world.service.create(rep, "account", {"name": name})
    client = make_client(world, monkeypatch)
    sign_in(client, "root")
    yield client
    world.engine.dispose()


def edit_account(client, *lines):
    path = client.world.registry.app.folder + "/entities/account.yaml"
    text = open(path, encoding="utf-8").read()
    text = text.replace("fields:\n", "fields:\n" + "".join(f"  {line}\n" for line in lines), 1)
    open(path, "w", encoding="utf-8").write(text)


def columns(world):
    with world.engine.connect() as conn:
        return {c["name"] for c in sa.inspect(conn).get_columns("e_account")}


def apply(client, **fields):
    page = html(client.get("/admin/site"))
    plan = re.search(r'name="plan" value="([0-9a-f]+)"', page).group(1)
    return client.post("/admin/site/migrate", data={
        "csrf_token": csrf_of(client, "/admin/site"), "plan": plan, **fields})


def config_audit(world):
    audit = tables(world)["audit"]
    with world.engine.connect() as conn:
        return [(r.action, r.user_id, r.changes) for r in conn.execute(
            sa.select(audit).where(audit.c.entity == "crm.config").order_by(audit.c.id))]


def test_a_refused_step_with_row_counts_needs_allow_data_loss_and_confirmation(fresh):
    world = fresh.world
    edit_account(fresh, "region: {type: string, required: true}",
                 "nickname: {type: string}")
    page = html(fresh.get("/admin/site"))
    assert "needs 3 database changes" in page
    assert "add column e_account.nickname (string)" in page
    assert re.search(r"<strong>Refused:</strong> account.region: new required field on a table "
                     r"with rows that would be empty \(give it a default\); 3 rows affected "
                     r'<span class="rows">\(3 rows affected\)</span>', page)
    assert 'name="allow_data_loss"' in page

    before = everything(world)
    response = apply(fresh)  # neither box ticked
    assert response.status_code == 422
    assert errors_of(html(response), "confirm") == ["tick this box to confirm"]
    assert errors_of(html(response), "allow_data_loss") == [
        "1 changes were refused; tick this box to apply them anyway"]
    response = apply(fresh, confirm="1")
    assert response.status_code == 422 and errors_of(html(response), "confirm") == []
    response = fresh.post("/admin/site/migrate", data={
        "csrf_token": csrf_of(fresh, "/admin/site"), "plan": "0" * 32, "confirm": "1",
        "allow_data_loss": "1"})
    assert response.status_code == 409
    assert "The plan changed since you read it" in html(response)
    assert everything(world) == before and "nickname" not in columns(world)

    response = apply(fresh, confirm="1", allow_data_loss="1")
    assert response.status_code == 302, html(response)
    assert {"region", "nickname"} <= columns(world)
    [(action, user_id, changes)] = config_audit(world)
    assert action == "config:migrate" and user_id == world.users.by_username("root")
    assert changes["allow_data_loss"] is True
    assert "add column e_account.nickname (string)" in changes["steps"]
    page = html(fresh.get("/admin/site"))
    # allowed, the refused step adds the column empty (no step of its own): two changes
    assert "2 changes were applied" in page
    assert "matches the configuration" in page


def test_after_applying_the_app_serves_the_new_configuration(fresh):
    world = fresh.world
    edit_account(fresh, "nickname: {type: string, max_length: 20}")
    assert "nickname" not in html(fresh.get("/account/new"))
    response = apply(fresh, confirm="1")
    assert response.status_code == 302, html(response)
    assert "allow_data_loss" not in str(config_audit(world)[0][2]["steps"])
    assert "nickname" in html(fresh.get("/account/new"))
    token = csrf_of(fresh, "/account/new")
    response = fresh.post("/account/new", data={"name": "Delta", "nickname": "D",
                                                "csrf_token": token})
    assert response.status_code == 302, html(response)
    with world.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT nickname FROM e_account WHERE name = 'Delta'")) \
            .scalar() == "D"
    # the old registry is gone from the app, and the plan is empty again
    assert fresh.app_.extensions["crm"].registry is not world.registry
    page = html(fresh.get("/admin/site"))
    assert "matches the configuration" in page and "Reload the configuration" in page


def test_a_broken_configuration_is_listed_and_nothing_can_be_applied(fresh):
    world = fresh.world
    edit_account(fresh, "bad: {type: strnig}")
    page = html(fresh.get("/admin/site"))
    assert "has problems" in page and re.search(r"account\.yaml:\d+:\d+: error", page)
    assert 'name="confirm"' not in page
    before = everything(world)
    response = fresh.post("/admin/site/migrate", data={
        "csrf_token": csrf_of(fresh, "/admin/site"), "plan": "x", "confirm": "1"})
    assert response.status_code == 422
    assert everything(world) == before


def test_the_audit_index_is_added_to_an_existing_database(database_url, tmp_path):
    from engine.storage.migrate import migrate, plan_migration
    world = World(database_url, site=make_site(tmp_path / "site"))
    with world.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX crm_audit_at"))
    with world.engine.connect() as conn:
        assert [s.description for s in plan_migration(conn, world.registry).changes] == [
            "create index crm_audit_at"]
    migrate(world.engine, world.registry)
    with world.engine.connect() as conn:
        assert plan_migration(conn, world.registry).changes == []
        assert "crm_audit_at" in {ix["name"] for ix in sa.inspect(conn).get_indexes("crm_audit")}
    world.engine.dispose()
