"""The runtime on one machine (SQLite and PostgreSQL): the in-process runner does the jobs a
fleet's workers do, each piece of work once; configuration versions; jobs that no longer fit
fail visibly; health, metrics, the access log; the shared secret key; the deployment files.
The fleet of real processes on PostgreSQL and Redis is tests/test_runtime_fleet.py."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

import engine
from conftest import BARE_ROOT, World
from engine.records.access import SYSTEM
from engine.records.importjobs import ImportJobs
from engine.runtime import metrics, status
from engine.runtime.context import Runtime
from engine.runtime.embedded import EmbeddedRunner
from engine.runtime.scheduler import Scheduler
from engine.storage.database import write_transaction
from engine.storage.migrate import migrate
from runtimesite import HOOK_KEY, Receiver, runtime_site

ROOT = Path(__file__).parent.parent
UTC = dt.timezone.utc


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def one_machine(tmp_path, receiver, monkeypatch, database_url):
    """A migrated runtime site, its Runtime and an in-process runner (two worker threads)."""
    monkeypatch.setenv("CRM_TEST_HOOK_KEY", HOOK_KEY)
    site = runtime_site(tmp_path, receiver.port)
    world = World(database_url, site=site, root=BARE_ROOT)
    runtime = Runtime(world.registry, world.engine, service=world.service, root=BARE_ROOT)
    runner = EmbeddedRunner(runtime, threads=2)
    world.site, world.runtime, world.runner = site, runtime, runner
    yield world
    runner.stop()
    world.engine.dispose()


def wait_until(check, seconds=20.0):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def rows(world, name, *columns):
    table = world.service.schema.entities.get(name) if name in world.registry.entities \
        else world.service.schema.engine[name]
    with world.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(*(table.c[c] for c in columns)).order_by(table.c[columns[0]]))]


def tickets(world, count, start=0):
    return [world.runtime.service.create(SYSTEM, "ticket", {"subject": f"t{i}", "code": f"C{i}"})
            ["id"] for i in range(start, start + count)]


# ---------------------------------------------------------------- the jobs, in one process

def test_each_webhook_is_delivered_once_by_the_in_process_runner(one_machine, receiver):
    tickets(one_machine, 30)
    wait_until(lambda: receiver.received() >= 30)
    one_machine.runner.join()
    outbox = rows(one_machine, "outbox", "id", "delivered_at", "lease_owner", "attempts")
    assert len(outbox) == 30
    assert dict(receiver.counts) == {message_id: 1 for message_id, *_ in outbox}
    assert all(delivered is not None and owner is None and attempts == 1
               for _, delivered, owner, attempts in outbox)


def test_a_schedule_tick_is_asked_for_once_and_reaches_every_record_once(one_machine):
    world = one_machine
    tickets(world, 25)
    scheduler = Scheduler(world.runtime, interval=1)
    asked = scheduler.run_once()
    assert [line.split()[:2] for line in asked if line.startswith("automations")] == \
        [["automations.tick", "sweep_hits"]]
    world.runner.join()
    assert {hits for _, hits in rows(world, "ticket", "id", "hits")} == {1}
    assert [a for a in scheduler.run_once() if a.startswith("automations")] == []  # finished
    other = Scheduler(Runtime(world.registry, world.engine, root=BARE_ROOT), interval=1)
    assert other.run_once() == []  # the first one leads; the second asks for nothing
    scheduler.stop()
    assert [a for a in other.run_once() if a.startswith("automations")] == []


def test_a_tick_left_by_a_dead_worker_goes_on_from_its_checkpoint(one_machine):
    world = one_machine
    ids = tickets(world, 20)
    service = world.runtime.service
    tick = service.automations.due_ticks()[0][1]
    t = service.schema.engine["automation_tick"]
    table = service.schema.entities["ticket"]
    with write_transaction(world.engine) as conn:  # a worker did 8 records, then died
        conn.execute(table.update().where(table.c.id <= ids[7]).values(hits=1))
        conn.execute(t.update().values(lease_owner="dead:1:x/job", matched=8, last_id=ids[7],
                                       lease_until=dt.datetime.now(UTC) - dt.timedelta(seconds=1),
                                       enqueued_at=dt.datetime.now(UTC) - dt.timedelta(hours=1)))
    asked = Scheduler(world.runtime, interval=1).run_once()
    assert f"automations.tick sweep_hits {tick.isoformat()}" in asked
    world.runner.join()
    assert [hits for _, hits in rows(world, "ticket", "id", "hits")] == [1] * 20
    [(matched, finished, owner)] = rows(world, "automation_tick", "matched", "finished_at",
                                        "lease_owner")
    assert matched == 20 and finished is not None and owner is None


def _import_job(world, lines, prefix):
    admin = world.user("root", "admin")
    jobs = ImportJobs(world.runtime.service)
    content = ("subject,code\r\n" +
               "".join(f"row {i},{prefix}{i}\r\n" for i in range(lines))).encode()
    job_id = jobs.upload(admin, "ticket", "tickets.csv", content)
    jobs.save_mapping(admin, job_id, ["subject", "code"], all_or_nothing=False)
    return admin, jobs, job_id


def test_an_import_runs_as_a_job_and_a_stopped_one_resumes_from_its_last_batch(one_machine):
    world = one_machine
    admin, jobs, job_id = _import_job(world, 2500, "A")
    jobs.start(admin, job_id)
    world.runner.join()
    job = jobs.get(admin, job_id)
    assert (job["state"], job["done_rows"], job["created"], job["rejected"]) == \
        ("done", 2500, 2500, 0)

    admin, jobs, second = _import_job(world, 2500, "B")
    with write_transaction(world.engine) as conn:  # started, as if no worker had it yet
        table = world.service.schema.engine["import_job"]
        conn.execute(table.update().where(table.c.id == second).values(status="queued"))
    def stop_after_the_first_batch():
        return jobs.get(admin, second)["done_rows"] >= 1000

    # a worker told to stop hands the job back after its committed batch
    assert jobs.run(second, "worker-a:1:x/job", stop_after_the_first_batch) is None
    job = jobs.get(admin, second)
    assert (job["state"], job["done_rows"], job["lease_owner"]) == ("interrupted", 1000, None)
    assert jobs.run(second, "worker-b:2:y/job") == "done"
    job = jobs.get(admin, second)
    assert (job["state"], job["done_rows"], job["created"], job["rejected"]) == \
        ("done", 2500, 2500, 0)
    codes = [code for _, code in rows(world, "ticket", "id", "code")]
    assert sorted(codes) == sorted([f"A{i}" for i in range(2500)] +
                                   [f"B{i}" for i in range(2500)])  # none twice, none lost


def test_a_job_whose_payload_no_longer_fits_fails_visibly(one_machine):
    world = one_machine
    before = metrics.JOBS.labels("automations.tick", "refused")._value.get()
    world.runtime.send("automations.tick", automation="gone", tick="2026-01-01T00:00:00+00:00")
    world.runtime.send("imports.run", job_id="seven")
    world.runtime.send("webhooks.deliver", bogus=1)
    world.runner.join()
    failures = {f["job"]: f for f in status.failures(world.runtime.service)}
    assert sorted(failures) == ["automations.tick", "imports.run", "webhooks.deliver"]
    assert "'gone' is not in the configuration" in failures["automations.tick"]["error"]
    assert failures["imports.run"]["error"] == "job_id must be a number"
    assert "does not fit the job" in failures["webhooks.deliver"]["error"]
    assert failures["automations.tick"]["payload"] == {
        "automation": "gone", "tick": "2026-01-01T00:00:00+00:00"}
    assert all(f["attempts"] == 1 and f["config_version"] == world.runtime.version
               for f in failures.values())
    assert metrics.JOBS.labels("automations.tick", "refused")._value.get() == before + 1
    assert status.waiting_work(world.runtime.service)["failed_jobs_24h"] == 3


# ---------------------------------------------------------------- configuration versions

def test_every_process_follows_the_applied_configuration_and_says_when_it_cannot(
        one_machine, tmp_path):
    world = one_machine
    first, second = world.runtime, Runtime(world.registry, world.engine, poll=3600,
                                           root=BARE_ROOT)
    assert first.problems() == second.problems() == []
    old_version = first.version
    ticket = world.site / "entities" / "ticket.yaml"
    ticket.write_text(ticket.read_text().replace("fields:\n", "fields:\n  note: {type: text}\n"))
    changed = engine.load_registry(site=world.site, root=BARE_ROOT)
    migrate(world.engine, changed)
    assert first.refresh(force=True) is True
    assert "note" in first.registry.entities["ticket"].fields
    assert first.version > old_version and first.problems() == []
    # a process that has not looked yet catches up before running a job enqueued under it
    assert second.version == old_version
    EmbeddedRunner(second).runner.execute("webhooks.sweep", {"config": first.version})
    assert second.version == first.version
    assert "note" in second.service.registry.entities["ticket"].fields
    # a process whose files differ keeps what it serves, and says so
    stale = tmp_path / "stale"
    runtime_site(stale, 1)
    behind = Runtime(engine.load_registry(site=stale / "site", root=BARE_ROOT), world.engine,
                     root=BARE_ROOT)
    assert behind.problems() == [f"this process's configuration differs from version "
                                 f"{first.version}, the one applied last: run crm migrate"]


# ---------------------------------------------------------------- operations endpoints

@pytest.fixture
def app_(one_machine, monkeypatch):
    monkeypatch.setenv("CRM_SECRET_KEY", "runtime-test-key")
    from web import create_app
    return create_app(one_machine.registry, one_machine.engine, one_machine.runtime)


def test_health_readiness_and_metrics(app_, one_machine, monkeypatch):
    client = app_.test_client()
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json == {"status": "ready", "configuration_version": one_machine.runtime.version,
                          "checks": {"database": "ok", "queue": "ok", "configuration": "ok"},
                          "problems": []}
    text = client.get("/metrics").get_data(as_text=True)
    assert 'crm_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'crm_queue_depth{queue="default"}' in text
    assert 'crm_work_waiting{kind="webhooks"} 0.0' in text
    monkeypatch.setenv("CRM_METRICS_TOKEN", "scrape-me")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).status_code \
        == 200
    # a configuration applied that this process's files do not give: not ready, and why
    with write_transaction(one_machine.engine) as conn:
        config = one_machine.service.schema.engine["config"]
        latest = conn.execute(sa.select(config).order_by(config.c.id.desc())).mappings().first()
        conn.execute(config.insert().values(
            **{k: v for k, v in latest.items() if k != "id"} | {"fingerprint": "elsewhere"}))
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["checks"]["configuration"] == "failed"
    assert "site folder or engine differs" in ready.json["problems"][0]


def test_one_access_log_line_per_request_with_its_request_id(app_, monkeypatch):
    from engine.runtime.logs import configure_logging
    monkeypatch.setenv("CRM_LOG_FORMAT", "json")
    stream = io.StringIO()
    configure_logging(stream)
    try:
        client = app_.test_client()
        given = client.get("/login", headers={"X-Request-ID": "req-42"})
        made = client.get("/no/such/page", headers={"X-Request-ID": "bad id !"})
        client.get("/healthz")  # probes are counted, not logged
    finally:
        root = logging.getLogger()
        for handler in list(root.handlers):
            if getattr(handler, "_crm_handler", False):
                root.removeHandler(handler)
    assert given.headers["X-Request-ID"] == "req-42"
    assert len(made.headers["X-Request-ID"]) == 32
    lines = [json.loads(line) for line in stream.getvalue().splitlines()
             if '"crm.access"' in line]
    assert [(l["request_id"], l["method"], l["path"], l["status"], l["route"]) for l in lines] \
        == [("req-42", "GET", "/login", 200, "/login"),
            (made.headers["X-Request-ID"], "GET", "/no/such/page", 404, "(unmatched)")]
    assert all(l["level"] == "INFO" and isinstance(l["duration_ms"], float) for l in lines)


# ---------------------------------------------------------------- the secret key

def crm(world, *args, **env):
    """Run the crm command on the world's site and database; return (status, output)."""
    import os
    import subprocess
    import sys
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("CRM_SECRET_KEY", "CRM_ENV", "CRM_BROKER_URL")}
    environment.update(CRM_CONTENT_ROOT=str(BARE_ROOT), CRM_SITE=str(world.site),
                       CRM_DATABASE_URL=world.engine.url.render_as_string(hide_password=False),
                       **env)
    done = subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], env=environment,
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


def test_production_needs_the_secret_key_and_otherwise_one_key_is_shared(one_machine,
                                                                           monkeypatch, tmp_path):
    from web import create_app
    from web.session import secret_key
    monkeypatch.delenv("CRM_SECRET_KEY", raising=False)
    monkeypatch.setenv("CRM_ENV", "production")
    with pytest.raises(RuntimeError, match="CRM_ENV=production needs CRM_SECRET_KEY"):
        create_app(one_machine.registry, one_machine.engine)
    status, output = crm(one_machine, "serve", CRM_ENV="production")
    assert status == 1 and "CRM_ENV=production needs CRM_SECRET_KEY: set it" in output
    monkeypatch.delenv("CRM_ENV")
    schema = one_machine.service.schema
    # two machines, each with its own folder: one key, kept in the database
    first = secret_key(str(tmp_path / "nowhere"), one_machine.engine, schema)
    folder = tmp_path / "machine2"
    folder.mkdir()
    assert secret_key(str(folder), one_machine.engine, schema) == first
    assert not (folder / ".crm").exists()
    assert rows(one_machine, "setting", "name", "value") == [("secret_key", first)]


# ---------------------------------------------------------------- deployment files

def test_the_compose_file_runs_commands_the_cli_has():
    import cli
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    commands = {name: service["command"] for name, service in compose["services"].items()
                if "command" in service and name not in ("redis",)}
    assert sorted(commands) == ["app", "migrate", "scheduler", "worker"]
    for name, command in commands.items():
        if command[0] == "crm":
            sub = cli.cli.get_command(None, command[1])
            assert sub is not None, name
            sub.make_context(command[1], list(command[2:]))  # its options parse
        else:
            assert command == ["gunicorn", "-c", "deploy/gunicorn.conf.py"]
    settings = {}
    exec((ROOT / "deploy" / "gunicorn.conf.py").read_text(), settings)
    module, _, attribute = settings["wsgi_app"].partition(":")
    assert (ROOT / (module.replace(".", "/") + ".py")).is_file() and attribute == "app"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py"]' in dockerfile


def test_a_worker_needs_a_broker_and_known_queues(one_machine):
    status, output = crm(one_machine, "worker")
    assert status == 1 and "no broker: pass --broker redis://" in output
    status, output = crm(one_machine, "worker", "--queues", "default,fast")
    assert status == 1 and "unknown queue 'fast': the queues are bulk, default" in output
    status, output = crm(one_machine, "scheduler", "--broker", "amqp://x")
    assert status == 1 and "unsupported broker URL 'amqp://x'" in output


# ---------------------------------------------------------------- mail in the background

def test_notifications_are_mailed_once_by_a_background_job(tmp_path, database_url, monkeypatch):
    from email import message_from_bytes, policy
    from mailservers import SmtpSink
    smtp = SmtpSink()
    try:
        site = runtime_site(tmp_path, 1)
        (site / "app.yaml").write_text(
            (site / "app.yaml").read_text() +
            "mail:\n  notifications: true\n  smtp: {host: 127.0.0.1, port: %d, tls: none, "
            "from: \"CRM <crm@ourco.example>\"}\n" % smtp.port)
        (site / "automations" / "hook_created.yaml").unlink()
        (site / "automations" / "tell_owner.yaml").write_text(
            "automation: tell_owner\nentity: ticket\nwhen: {event: created}\ndo:\n"
            "  - notify: {to: owner, title: {en: New ticket, zh: 新工单}, "
            "message: {en: \"A ticket was created\", zh: 已创建工单}}\n")
        monkeypatch.setenv("CRM_PUBLIC_URL", "https://crm.example.com/")
        world = World(database_url, site=site, root=BARE_ROOT)
        runtime = Runtime(world.registry, world.engine, service=world.service, root=BARE_ROOT)
        runner = EmbeddedRunner(runtime)
        try:
            rep = world.users.caller(world.users.create("rep", "pw", ["rep"], email="rep@x.example"))
            quiet = world.users.caller(world.users.create("quiet", "pw", ["rep"]))  # no address
            made = runtime.service.create(rep, "ticket", {"subject": "a", "code": "A"})
            runtime.service.create(quiet, "ticket", {"subject": "b", "code": "B"})
            runner.join()
            wait_until(lambda: smtp.received)
            runtime.send("notifications.mail")  # asked again: nothing is mailed twice
            runner.join()
        finally:
            runner.stop()
        assert len(smtp.received) == 1
        sender, recipients, raw = smtp.received[0]
        mail = message_from_bytes(raw, policy=policy.default)
        assert (sender, recipients, mail["Subject"]) == (
            "crm@ourco.example", ["rep@x.example"], "New ticket")
        assert mail.get_content().replace("\r\n", "\n").strip() == (f"A ticket was created\n\n"
                                              f"https://crm.example.com/ticket/{made['id']}")
        assert sorted(rows(world, "notification", "user_id", "mail_state")) == [
            (rep.user_id, "sent"), (quiet.user_id, "skipped")]
        world.engine.dispose()
    finally:
        smtp.stop()


# ---------------------------------------------------------------- exports of long lists

def _signed_in(app, name):
    import re
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/login", data={"username": name, "password": "pw",
                                       "csrf_token": token}).status_code == 302
    return client


def test_a_long_list_is_exported_by_a_background_job(app_, one_machine, monkeypatch):
    import csv
    import web.listing_ui
    world = one_machine
    world.users.create("rep", "pw", ["rep"])
    world.users.create("other", "pw", ["rep"])
    tickets(world, 12)
    monkeypatch.setattr(web.listing_ui, "INLINE_ROWS", 10)  # "long" for this test
    rep = _signed_in(app_, "rep")
    short = rep.get("/ticket/export.csv?code__contains=C1")  # C1, C10, C11: written at once
    assert short.status_code == 200 and short.headers["Content-Type"].startswith("text/csv")
    long = rep.get("/ticket/export.csv?sort=-code")
    assert long.status_code == 302 and long.headers["Location"] == "/exports/1"
    world.runner.join()
    page = rep.get("/exports/1").get_data(as_text=True)
    assert "The file is ready: 12 records." in page and 'href="/exports/1/download"' in page
    assert rep.get("/exports/1/progress").json == {"state": "done", "done": 12, "total": None,
                                                   "percent": None}
    download = rep.get("/exports/1/download")
    assert download.headers["Content-Disposition"].startswith('attachment; filename="ticket-')
    lines = list(csv.reader(io.StringIO(download.get_data().decode("utf-8-sig"))))
    assert len(lines) == 13 and lines[1][lines[0].index("Code")] == "C9"  # sorted -code
    other = _signed_in(app_, "other")
    assert other.get("/exports/1").status_code == 404  # an export is its user's own
    assert other.get("/exports/1/download").status_code == 404


def test_the_admin_console_shows_the_jobs_that_failed_and_the_work_waiting(app_, one_machine):
    import html
    world = one_machine
    world.users.create("root", "pw", ["admin"])
    world.runtime.send("automations.tick", automation="gone", tick="2026-01-01T00:00:00+00:00")
    world.runner.join()
    with write_transaction(world.engine) as conn:  # a worker elsewhere, heard of just now
        now = dt.datetime.now(UTC)
        conn.execute(world.service.schema.engine["worker"].insert().values(
            id="box-2:4242:abc", host="box-2", pid=4242, kind="worker", queues=["default"],
            config_version=world.runtime.version, started_at=now, seen_at=now, jobs_done=7,
            jobs_failed=1))
    page = html.unescape(_signed_in(app_, "root").get("/admin/jobs").get_data(as_text=True))
    assert "<code>automations.tick</code>" in page
    assert "schedule automation 'gone' is not in the configuration any more" in page
    assert '<dd data-kind="failed_jobs_24h">1</dd>' in page
    assert '<dd data-queue="default">0</dd>' in page
    assert "box-2 · 4242" in page and "running" in page
    assert _signed_in(app_, "root").get("/admin/jobs").status_code == 200
    rep = world.users.create("rep", "pw", ["rep"])
    assert rep and _signed_in(app_, "rep").get("/admin/jobs").status_code == 403
