"""`crm serve --dev`: reloads swap the registry whole, a broken edit keeps the server up and
shows every problem, a pending migration is shown and applied (web/devserver.py, devpages.py,
devwatch.py)."""

from __future__ import annotations

import dataclasses
import re
import textwrap
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.test import Client

from conftest import BARE_ROOT

CONTACT = """\
entity: contact
label: {en: Contact, zh: 联系人}
fields:
  name: {type: string, label: {en: Name, zh: 姓名}, required: true}
"""
ROLES = """\
roles:
  rep:
    label: {en: Rep, zh: 代表}
    entities:
      contact: {read: all, create: true, update: all}
"""


def write_dev_site(folder: Path) -> Path:
    """A one-entity site on the bare content root (no metadata/, no pack)."""
    (folder / "entities").mkdir(parents=True, exist_ok=True)
    (folder / "app.yaml").write_text("app: dev_site\nlabel: Dev site\nlocale: en\n",
                                     encoding="utf-8")
    (folder / "entities" / "contact.yaml").write_text(CONTACT, encoding="utf-8")
    (folder / "roles.yaml").write_text(ROLES, encoding="utf-8")
    return folder


def edit(path: Path, text: str) -> None:
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def csrf_of(html: str, field: str = "csrf_token") -> str:
    return re.search(rf'name="{field}" value="([^"]+)"', html).group(1)


@pytest.fixture
def dev(tmp_path, database_url):
    """A dev server (not yet loaded) for a fresh site and a fresh, empty database."""
    from web.devserver import DevServer
    site = write_dev_site(tmp_path / "site")
    server = DevServer(site, database=database_url, root=BARE_ROOT, secret="dev-test-key")
    yield server
    server.stop()


def applied(server, client: Client):
    """Apply the pending migration through the page's form, as a consultant would."""
    page = client.get("/contact")
    assert page.status_code == 503
    html = page.get_data(as_text=True)
    response = client.post("/_dev/migrate", data={
        "csrf_token": csrf_of(html), "generation": csrf_of(html, "generation"),
        "next": "/contact"})
    assert response.status_code == 303 and response.headers["Location"] == "/contact"
    return server.state


def signed_in(server, client: Client, name: str = "rep") -> None:
    server.state.app.extensions["crm"].users.create(name, "pw", ["rep"])
    html = client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"username": name, "password": "pw",
                                           "csrf_token": csrf_of(html), "next": "/contact"})
    assert response.status_code == 302 and response.headers["Location"] == "/contact"
    assert client.get("/contact").status_code == 200


# ---------------------------------------------------------------- pending migration

def test_a_fresh_database_shows_the_plan_and_the_button_applies_it(dev):
    state = dev.reload()
    assert (state.status, state.generation, state.app) == ("migration", 1, None)
    client = Client(dev)

    page = client.get("/anything/at/all")
    html = page.get_data(as_text=True)
    assert page.status_code == 503 and 'id="dev-migration"' in html
    assert "create table e_contact for entity contact" in html
    assert "The database needs" in html and "Apply the migration" in html
    cookie = page.headers["Set-Cookie"]
    assert "crm_dev_csrf=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie

    api = client.get("/api/v1/contact")
    body = api.get_json()["error"]
    assert api.status_code == 503 and api.headers["Retry-After"]
    assert body["code"] == "migration_pending"
    assert {"description": "create table e_contact for entity contact", "refused": False,
            "rows": 0} in body["steps"]

    # no token, a wrong token, a foreign page: refused, and nothing applied
    token, generation = csrf_of(html), str(state.generation)
    for form, headers in (({"generation": generation}, {}),
                          ({"generation": generation, "csrf_token": "forged"}, {}),
                          ({"generation": generation, "csrf_token": token},
                           {"Origin": "http://evil.example"})):
        refused = client.post("/_dev/migrate", data=form, headers=headers)
        assert refused.status_code == 400
        assert "The form has expired" in refused.get_data(as_text=True)
    # a plan older than the one on screen now: refused too
    stale = client.post("/_dev/migrate", data={"generation": "0", "csrf_token": token})
    assert stale.status_code == 409 and "nothing was applied" in stale.get_data(as_text=True)
    with dev.engine.connect() as conn:
        assert not sa.inspect(conn).has_table("e_contact")
    assert dev.state is state

    state = applied(dev, client)
    assert state.status == "ok" and state.generation == 2
    with dev.engine.connect() as conn:
        assert sa.inspect(conn).has_table("e_contact")
    assert client.get("/contact").headers["Location"].startswith("/login")  # the real app
    assert client.get("/api/v1/me").status_code == 401


def test_a_refused_step_is_shown_and_never_applied(dev):
    dev.reload()
    client = Client(dev)
    applied(dev, client)
    service = dev.state.app.extensions["crm"].service
    from engine.records.access import SYSTEM
    service.create(SYSTEM, "contact", {"name": "Ada"})
    edit(dev.site / "entities" / "contact.yaml",
         CONTACT + "  city: {type: string, required: true}\n")

    state = dev.reload()
    assert state.status == "migration" and [s.rows for s in state.plan.refused] == [1]
    page = client.get("/contact")
    html = page.get_data(as_text=True)
    assert "Refused:" in html and "contact.city: new required field" in html
    assert "1 rows affected" in html and "crm migrate --allow-data-loss" in html
    assert "Apply the migration" not in html and "crm_dev_csrf" not in page.headers.get(
        "Set-Cookie", "")

    # even a hand-made POST cannot apply it: the planner refuses inside the transaction
    client.set_cookie("crm_dev_csrf", "t")
    response = client.post("/_dev/migrate", data={"csrf_token": "t",
                                                  "generation": str(state.generation)})
    assert response.status_code == 303
    assert dev.state.status == "migration" and dev.state.plan.refused
    with dev.engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("e_contact")}
    assert "city" not in columns


# ---------------------------------------------------------------- swaps

def test_an_edit_swaps_in_a_whole_new_registry_and_keeps_the_session(dev):
    dev.reload()
    client = Client(dev)
    first = applied(dev, client)
    signed_in(dev, client)
    assert "Name" in client.get("/contact/new").get_data(as_text=True)

    edit(dev.site / "entities" / "contact.yaml", CONTACT.replace("en: Name", "en: Full name"))
    second = dev.reload()
    assert second.status == "ok" and second.app is not first.app
    new_site, old_site = second.app.extensions["crm"], first.app.extensions["crm"]
    assert new_site.registry is not old_site.registry
    assert new_site.registry.entities["contact"].fields["name"].label.get("en") == "Full name"
    assert old_site.registry.entities["contact"].fields["name"].label.get("en") == "Name"
    assert new_site.service is not old_site.service  # the services are rebuilt with it

    form = client.get("/contact/new")  # the same cookie: still signed in
    assert form.status_code == 200 and "Full name" in form.get_data(as_text=True)

    # an additive change needs the database first; then the field is in the form
    edit(dev.site / "entities" / "contact.yaml", CONTACT + "  phone: {type: phone}\n")
    assert dev.reload().status == "migration"
    assert applied(dev, client).status == "ok"
    assert 'name="phone"' in client.get("/contact/new").get_data(as_text=True)


def test_a_request_is_served_by_the_state_it_started_with(dev):
    """The dispatcher reads the state once: a swap during a request changes nothing for it."""
    dev.reload()
    client = Client(dev)
    applied(dev, client)
    old_app = dev.state.app
    seen = []

    def spying(environ, start_response):
        seen.append(environ["crm.dev.state"].app)
        dev.reload()  # a swap while this request runs
        return old_app(environ, start_response)

    dev.state = dataclasses.replace(dev.state, app=spying)
    response = client.get("/login")
    assert response.status_code == 200 and 'name="password"' in response.get_data(as_text=True)
    assert seen == [spying] and dev.state.app not in (spying, old_app)


# ---------------------------------------------------------------- broken configuration

def test_a_broken_edit_lists_every_problem_and_keeps_the_last_good_app(dev):
    dev.reload()
    client = Client(dev)
    good = applied(dev, client)
    signed_in(dev, client)
    contact = dev.site / "entities" / "contact.yaml"
    edit(contact, CONTACT.replace("type: string", "type: strng"))
    edit(dev.site / "roles.yaml", ROLES.replace("create: true", "creat: true"))

    broken = dev.reload()
    assert broken.status == "invalid" and broken.app is None
    assert broken.last_good is good.app and broken.last_good_at == good.loaded_at
    where = [(Path(p.path).name, p.line, p.column, p.code) for p in broken.problems]
    assert where == [("contact.yaml", 4, 16, "bad-value"), ("roles.yaml", 5, 28, "unknown-key")]

    page = client.get("/contact/new")
    html = page.get_data(as_text=True)
    assert page.status_code == 503 and 'id="dev-invalid"' in html
    assert "Problems in the configuration: 2" in html
    assert f"{contact}:4:16" in html and "[bad-value]" in html
    assert "got &#39;strng&#39;" in html and "did you mean &#39;string&#39;?" in html
    assert f"{dev.site / 'roles.yaml'}:5:28" in html
    assert "dev.js" in html and "no-store" == page.headers["Cache-Control"]
    assert page.headers["Content-Security-Policy"] == "default-src 'self'"

    api = client.get("/api/v1/contact")
    assert api.status_code == 503
    error = api.get_json()["error"]
    assert error["code"] == "configuration_invalid"
    assert [(Path(p["file"]).name, p["line"], p["column"], p["code"], p["hint"])
            for p in error["problems"]] == [
        ("contact.yaml", 4, 16, "bad-value", "did you mean 'string'?"),
        ("roles.yaml", 5, 28, "unknown-key", "did you mean 'create'?")]

    # a form posted while broken writes nothing
    posted = client.post("/contact/new", data={"name": "Ghost"})
    assert posted.status_code == 503
    assert 'data-here="/contact/new"' in posted.get_data(as_text=True)  # where dev.js returns
    with dev.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from e_contact")).scalar() == 0

    edit(contact, CONTACT)
    edit(dev.site / "roles.yaml", ROLES)
    fixed = dev.reload()
    assert fixed.status == "ok" and fixed.generation == broken.generation + 1
    assert client.get("/contact/new").status_code == 200  # and still signed in


def test_a_yaml_syntax_error_and_a_deleted_app_yaml_are_shown_not_raised(dev):
    dev.reload()
    edit(dev.site / "entities" / "contact.yaml", "entity: contact\nfields: [\n")
    state = dev.reload()
    assert state.status == "invalid"
    assert ("contact.yaml", "yaml-syntax") in [(Path(p.path).name, p.code)
                                               for p in state.problems]
    (dev.site / "app.yaml").unlink()
    state = dev.reload()
    assert [p.code for p in state.problems][:1] == ["app-missing"]
    assert 'id="dev-invalid"' in Client(dev).get("/").get_data(as_text=True)


def test_a_failing_reload_is_shown_and_the_next_one_recovers(dev, monkeypatch):
    import web.devserver as devserver
    dev.reload()
    real = devserver.build_registry

    def explode(layers, problems):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(devserver, "build_registry", explode)
    state = dev.reload()
    assert state.status == "failed" and state.failure == "RuntimeError: disk on fire"
    page = Client(dev).get("/")
    assert page.status_code == 503 and "disk on fire" in page.get_data(as_text=True)
    api = Client(dev).get("/api/v1/me").get_json()["error"]
    assert api == {"code": "reload_failed", "message": "RuntimeError: disk on fire"}
    monkeypatch.setattr(devserver, "build_registry", real)
    assert dev.reload().status == "migration"


# ---------------------------------------------------------------- language, hints, status

def test_the_dev_pages_speak_the_readers_language(dev):
    dev.reload()
    client = Client(dev)
    english = client.get("/").get_data(as_text=True)
    assert '<html lang="en">' in english and "Apply the migration" in english
    by_header = client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "数据库需要" in by_header.get_data(as_text=True)
    by_link = client.get("/contact?lang=zh").get_data(as_text=True)
    assert '<html lang="zh-CN">' in by_link and "执行迁移" in by_link
    assert 'href="/contact?lang=en"' in by_link

    applied(dev, client)
    # the language chosen in the app (its session cookie) carries over to the dev pages
    html = client.get("/login").get_data(as_text=True)
    client.post("/locale", data={"locale": "zh", "csrf_token": csrf_of(html), "next": "/login"})
    edit(dev.site / "entities" / "contact.yaml", "entity: [\n")
    assert dev.reload().status == "invalid"
    assert "配置中有" in client.get("/login").get_data(as_text=True)


def test_a_hint_comes_from_the_message_or_from_the_documented_fix():
    from engine.errors import Problem
    from web.devpages import problem_view, typical_fixes
    assert typical_fixes()["yaml-syntax"].startswith("fix the bracket")
    assert problem_view(Problem("a.yaml", 3, 7, "yaml-syntax", "YAML syntax: oops")) == {
        "file": "a.yaml", "line": 3, "column": 7, "code": "yaml-syntax",
        "message": "YAML syntax: oops", "hint": typical_fixes()["yaml-syntax"]}
    view = problem_view(Problem("a.yaml", 1, 1, "unknown-key",
                                "unknown key 'lable' (did you mean 'label'?)"))
    assert (view["message"], view["hint"]) == ("unknown key 'lable'", "did you mean 'label'?")
    assert problem_view(Problem("a.yaml", 1, 1, "pack-cycle", "circular"))["hint"] is None


def test_the_status_and_overview_pages(dev):
    client = Client(dev)
    dev.reload()
    assert client.get("/_dev/status").get_json() == {"generation": 1, "status": "migration",
                                                     "problems": 0}
    applied(dev, client)
    assert client.get("/_dev/status").get_json()["status"] == "ok"
    overview = client.get("/_dev/")
    assert overview.status_code == 200
    assert "The configuration is valid" in overview.get_data(as_text=True)
    assert client.get("/_dev/nothing").status_code == 404
    assert client.get("/_dev/static/dev.js").status_code == 200


# ---------------------------------------------------------------- watching

def test_a_snapshot_sees_yaml_only_and_deletions(tmp_path):
    from web.devwatch import snapshot
    site = write_dev_site(tmp_path / "site")
    before = snapshot([site, tmp_path / "missing"])
    assert sorted(Path(p).name for p, _, _ in before) == ["app.yaml", "contact.yaml",
                                                          "roles.yaml"]
    (site / ".contact.yaml.swp").write_text("x")
    (site / "notes.txt").write_text("x")
    (site / ".crm").mkdir()
    (site / ".crm" / "hidden.yaml").write_text("x")
    assert snapshot([site]) == before
    (site / "roles.yaml").unlink()
    assert len(snapshot([site])) == 2
    # four levels: a pack's documents/templates/x.html is the deepest file a layer reads
    deep = site / "entities" / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "too_deep.yaml").write_text("x")
    (site / "entities" / "a" / "b" / "deep_enough.yaml").write_text("x")
    assert sorted(Path(p).name for p, _, _ in snapshot([site])) == [
        "app.yaml", "contact.yaml", "deep_enough.yaml"]


def test_the_watcher_reloads_once_after_a_burst_of_writes(tmp_path):
    from web.devwatch import Watcher
    site = write_dev_site(tmp_path / "site")
    target = site / "entities" / "contact.yaml"
    seen, done = [], threading.Event()

    def on_change():
        seen.append(target.read_text())
        done.set()
    watcher = Watcher([site], on_change, interval=0.05, settle=0.5).start()
    try:
        time.sleep(0.2)
        for n in range(5):  # an editor saving in steps, a half-written file in between
            target.write_text(CONTACT[: 20 * (n + 1)])
        target.write_text(CONTACT + "# final\n")
        assert done.wait(10)
        time.sleep(0.8)
        assert seen == [CONTACT + "# final\n"]
    finally:
        watcher.stop()


def test_a_started_server_notices_a_save_by_itself(dev):
    dev._watcher.interval, dev._watcher.settle = 0.05, 0.1
    dev.start()
    assert dev.state.generation == 1
    edit(dev.site / "entities" / "contact.yaml", "entity: [\n")
    deadline = time.monotonic() + 10
    while dev.state.generation == 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dev.state.status == "invalid"


def test_the_background_work_follows_the_configuration_served(tmp_path):
    from web.devserver import DevServer
    started = []

    class FakeBackground:  # what `crm serve --dev` starts: an in-process job runner
        def __init__(self, runtime):
            self.runtime = runtime
            started.append(self)

        def stop(self):
            started.remove(self)

    server = DevServer(write_dev_site(tmp_path / "site"),
                       database=f"sqlite:///{tmp_path / 'crm.db'}", root=BARE_ROOT,
                       secret="k", background=FakeBackground)
    try:
        server.reload()
        assert started == []  # nothing to run on before a configuration is served
        applied(server, Client(server))
        assert len(started) == 1
        first = started[0]
        assert first.runtime.service is server.serving_service()
        edit(server.site / "entities" / "contact.yaml", "entity: [\n")
        server.reload()
        assert started == [first]  # broken: the last good keeps the work going
        edit(server.site / "entities" / "contact.yaml", CONTACT)
        server.reload()
        assert len(started) == 1 and started[0] is not first
        assert started[0].runtime is server.state.app.extensions["crm_runtime"]
    finally:
        server.stop()
    assert started == []


# ---------------------------------------------------------------- the command

def test_dev_refuses_addresses_other_machines_can_reach(capsys):
    from cli import main
    assert main(["serve", "--dev", "--host", "0.0.0.0"]) == 1
    err = capsys.readouterr().err
    assert "--dev listens on loopback addresses only" in err and "0.0.0.0" in err
    from web.devserver import is_loopback
    assert [is_loopback(h) for h in ("127.0.0.1", "127.0.1.1", "::1", "localhost",
                                     "192.168.1.5", "")] == [True, True, True, True, False,
                                                             False]


def test_the_command_serves_a_broken_site_and_reports_reloads_in_the_terminal(tmp_path):
    import json
    import os
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    from test_cli_serve import REPO, free_port
    site = write_dev_site(tmp_path / "site")
    edit(site / "roles.yaml", ROLES.replace("read: all", "read: everything"))
    env = dict(os.environ, CRM_CONTENT_ROOT=str(BARE_ROOT), CRM_SITE=str(site),
               CRM_DATABASE_URL=f"sqlite:///{tmp_path / 'crm.db'}")
    port = free_port()
    server = subprocess.Popen([sys.executable, str(REPO / "cli.py"), "serve", "--dev",
                               "--port", str(port)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/me", timeout=1)
            except urllib.error.HTTPError as exc:
                assert exc.code == 503
                error = json.loads(exc.read())["error"]
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("crm serve --dev did not answer")
        assert error["code"] == "configuration_invalid"
        assert [(p["line"], p["column"], p["code"]) for p in error["problems"]] == [
            (5, 23, "wrong-type")]
    finally:
        server.terminate()
        out, err = server.communicate(timeout=20)
    assert "1 problem in the configuration; the browser shows them:" in err
    assert f"{site / 'roles.yaml'}:5:23: error:" in err and "do not use it in production" in err
    assert f"serving {site} on http://127.0.0.1:{port}/" in out
