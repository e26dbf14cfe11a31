"""A fleet of real processes on PostgreSQL and Redis: 2 app servers (`crm serve` sending jobs
to the broker), 3 `crm worker`s and a `crm scheduler`, one shared site folder.

- 1,000 webhooks from records created through both app servers: each delivery id received
  exactly once;
- `kill -9` of the worker holding a delivery, a schedule tick, an import: another worker
  finishes the work once its lease runs out; every record reached once, the import complete
  with no row twice, no delivery lost (a delivery the killed worker had sent may come again:
  the documented at-least-once window, which its delivery id lets a receiver drop);
- a configuration applied through one app server's admin console is served by the other and
  run by the workers.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

import engine
from conftest import BARE_ROOT
from engine.records.importjobs import ImportJobs
from engine.records.service import RecordService
from engine.records.users import Users
from engine.runtime.context import Runtime
from engine.runtime.embedded import start_background
from engine.storage.database import connect, write_transaction
from engine.storage.migrate import migrate
from pgdb import create_database
from runtimesite import HOOK_KEY, Receiver, runtime_site

REPO = Path(__file__).resolve().parents[1]
REDIS_URL = os.environ.get("CRM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LEASE_SECONDS = "3"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, seconds=60.0, what="the fleet"):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Fleet:
    def __init__(self, site: Path, url: str, receiver: Receiver, logs: Path):
        self.site, self.url, self.receiver, self.logs = site, url, receiver, logs
        self.env = dict(os.environ, CRM_CONTENT_ROOT=str(BARE_ROOT), CRM_SITE=str(site),
                        CRM_DATABASE_URL=url, CRM_BROKER_URL=REDIS_URL,
                        CRM_BROKER_NAMESPACE=f"crm-test-{uuid.uuid4().hex[:8]}",
                        CRM_SECRET_KEY="fleet-test-key", CRM_LEASE_SECONDS=LEASE_SECONDS,
                        CRM_CONFIG_POLL_SECONDS="0.3", CRM_TEST_HOOK_KEY=HOOK_KEY,
                        CRM_LOG_LEVEL="WARNING")
        self.processes: list[subprocess.Popen] = []
        self.apps: list[str] = []
        self.workers: list[subprocess.Popen] = []

    def spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}-{len(self.processes)}.log", "w")
        process = subprocess.Popen([sys.executable, str(REPO / "cli.py"), *args], env=self.env,
                                   stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def start(self) -> "Fleet":
        for _ in range(2):
            port = free_port()
            self.spawn("app", "serve", "--port", str(port), "--threads", "8")
            self.apps.append(f"http://127.0.0.1:{port}")
        for _ in range(3):
            self.add_worker()
        self.spawn("scheduler", "scheduler", "--interval", "0.5")
        for base in self.apps:
            wait_until(lambda: _answers(base + "/healthz"), 60, "the app servers")
        return self

    def add_worker(self) -> subprocess.Popen:
        worker = self.spawn("worker", "worker", "--threads", "8", "--shutdown-seconds", "5")
        self.workers.append(worker)
        return worker

    def kill_holder(self, owner: str) -> int:
        """kill -9 the worker whose lease `owner` is (host:pid:random/job) and start a new
        one, as a supervisor would; return the pid killed."""
        pid = int(owner.split(":")[1])
        os.kill(pid, signal.SIGKILL)
        for worker in self.workers:
            if worker.pid == pid:
                worker.wait(timeout=10)
        self.add_worker()
        return pid

    def stop(self) -> dict[int, int | None]:
        """SIGTERM every process still running; return the exit status of each (None: it
        had to be killed)."""
        running = [p for p in self.processes if p.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        statuses = {}
        for process in running:
            try:
                statuses[process.pid] = process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                statuses[process.pid] = None
        return statuses

    def failed_logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}"
                         for p in sorted(self.logs.glob("*.log")) if p.read_text().strip())


def _answers(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=1).status == 200
    except OSError:
        return False


def api(base: str, method: str, path: str, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base + "/api/v1" + path, method=method, headers=headers,
                                      data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read() or b"null")


@pytest.fixture
def fleet(postgres_server_url, tmp_path):
    import redis
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.exceptions.RedisError as exc:
        pytest.fail(f"the fleet test needs Redis at {REDIS_URL} (CRM_TEST_REDIS_URL): {exc}")
    url, drop = create_database(postgres_server_url)
    receiver = Receiver()
    site = runtime_site(tmp_path, receiver.port)
    os.environ["CRM_TEST_HOOK_KEY"] = HOOK_KEY
    registry = engine.load_registry(site=site, root=BARE_ROOT)
    db = connect(url)
    migrate(db, registry)
    service = RecordService(registry, db)
    users = Users(registry, db, service.schema)
    users.create("root", "pw-root", ["admin"])
    users.create("rep", "pw-rep", ["rep"])
    logs = tmp_path / "logs"
    logs.mkdir()
    fleet = Fleet(site, url, receiver, logs)
    fleet.service, fleet.users, fleet.engine = service, users, db
    try:
        fleet.start()
        yield fleet
    except BaseException:
        print(fleet.failed_logs())
        raise
    finally:
        fleet.stop()
        receiver.close()
        db.dispose()
        drop()


def outbox(fleet) -> list:
    o = fleet.service.schema.engine["outbox"]
    with fleet.engine.connect() as conn:
        return conn.execute(sa.select(o.c.id, o.c.delivered_at, o.c.lease_owner)
                            .order_by(o.c.id)).all()


def hits(fleet) -> dict[int, int]:
    t = fleet.service.schema.entities["ticket"]
    with fleet.engine.connect() as conn:
        return dict(conn.execute(sa.select(t.c.id, t.c.hits)).all())


def create_tickets(fleet, token, count, start):
    def one(i):
        status, _ = api(fleet.apps[i % 2], "POST", "/ticket",
                        {"subject": f"ticket {i}", "code": f"T{i}"}, token)
        assert status == 201
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(one, range(start, start + count)))


def test_a_fleet_does_every_piece_of_work_once_and_survives_kill_9(fleet):
    receiver = fleet.receiver
    _, answer = api(fleet.apps[0], "POST", "/auth/token", {"username": "rep",
                                                          "password": "pw-rep"})
    token = answer["token"]

    # 1,000 webhooks through two app servers and three workers: each exactly once
    create_tickets(fleet, token, 1000, 0)
    wait_until(lambda: all(r.delivered_at for r in outbox(fleet)), 90, "1,000 deliveries")
    ids = [r.id for r in outbox(fleet)]
    assert len(ids) == 1000
    assert dict(receiver.counts) == {i: 1 for i in ids}

    # kill -9 during deliveries: none lost; only what the dead worker held may come twice
    receiver.slow = 0.02
    create_tickets(fleet, token, 300, 1000)
    held = wait_until(lambda: [r for r in outbox(fleet) if r.lease_owner], 30, "a delivery")
    victim = held[0].lease_owner.split("/")[0]
    fleet.kill_holder(held[0].lease_owner)
    # what the dead worker held when it died (its leases stay until they run out)
    held_by_victim = {r.id for r in outbox(fleet) if r.lease_owner and
                      r.lease_owner.startswith(victim + "/")}
    receiver.slow = 0
    wait_until(lambda: all(r.delivered_at for r in outbox(fleet)), 90, "the deliveries left")
    ids = [r.id for r in outbox(fleet)]
    assert len(ids) == 1300 and set(receiver.counts) == set(ids)
    assert set(receiver.duplicates()) <= held_by_victim

    # kill -9 during a schedule tick: another worker goes on; every record reached once
    ticks = fleet.service.schema.engine["automation_tick"]
    wait_until(lambda: _ticks_finished(fleet), 60, "the first tick")
    before = hits(fleet)
    with write_transaction(fleet.engine) as conn:  # a new period begins: the tick is due again
        conn.execute(ticks.delete())
    running = wait_until(lambda: _tick_in_progress(fleet), 60, "the tick to start")
    fleet.kill_holder(running)
    wait_until(lambda: _ticks_finished(fleet), 90, "the tick to finish")
    after = hits(fleet)
    assert after == {record: count + 1 for record, count in before.items()}
    with fleet.engine.connect() as conn:
        [tick] = conn.execute(sa.select(ticks)).mappings().all()
    assert tick["matched"] == 1300 and tick["failed"] == 0 and tick["lease_owner"] is None

    # kill -9 during an import: it resumes from its last committed batch, no row twice
    runtime = Runtime(fleet.service.registry, fleet.engine, service=fleet.service,
                      root=BARE_ROOT)
    sender = start_background(runtime, REDIS_URL, scheduler=False)
    os.environ["CRM_BROKER_NAMESPACE"] = fleet.env["CRM_BROKER_NAMESPACE"]
    try:
        admin = fleet.users.caller(fleet.users.by_username("root"))
        jobs = ImportJobs(fleet.service)
        content = ("subject,code\r\n" +
                   "".join(f"imported {i},I{i}\r\n" for i in range(8000))).encode()
        job_id = jobs.upload(admin, "ticket", "tickets.csv", content)
        jobs.save_mapping(admin, job_id, ["subject", "code"], all_or_nothing=False)
        jobs.start(admin, job_id)
        owner = wait_until(lambda: _import_in_progress(jobs, admin, job_id), 60, "the import")
        fleet.kill_holder(owner)
        job = wait_until(lambda: (lambda j: j if j["state"] in ("done", "failed") else None)(
            jobs.get(admin, job_id)), 120, "the import to finish")
    finally:
        sender.stop()
        os.environ.pop("CRM_BROKER_NAMESPACE", None)
    assert (job["state"], job["done_rows"], job["created"], job["rejected"]) == \
        ("done", 8000, 8000, 0)
    t = fleet.service.schema.entities["ticket"]
    with fleet.engine.connect() as conn:
        codes = [c for (c,) in conn.execute(sa.select(t.c.code).where(t.c.code.like("I%")))]
    assert sorted(codes) == sorted(f"I{i}" for i in range(8000))

    # a configuration applied through app server 1 is served by app server 2 and the workers
    ticket = fleet.site / "entities" / "ticket.yaml"
    ticket.write_text(ticket.read_text().replace("fields:\n", "fields:\n  note: {type: text}\n"))
    version = _apply_through_the_console(fleet.apps[0])
    status, created = api(fleet.apps[1], "POST", "/ticket",
                          {"subject": "after", "code": "AFTER", "note": "seen"}, token)
    assert status == 201 and created["data"]["note"] == "seen"
    workers = fleet.service.schema.engine["worker"]

    def workers_caught_up():
        with fleet.engine.connect() as conn:
            running = conn.execute(sa.select(workers.c.config_version).where(
                workers.c.stopped_at.is_(None), workers.c.kind == "worker",
                workers.c.pid.in_([w.pid for w in fleet.workers if w.poll() is None]))).all()
        return len(running) == 3 and all(v == version for (v,) in running)
    wait_until(workers_caught_up, 30, "the workers to serve the new configuration")
    wait_until(lambda: receiver.received() >= 1301 + len(receiver.duplicates()), 30,
               "the webhook of the record made under the new configuration")
    with fleet.engine.connect() as conn:
        failures = conn.execute(sa.select(fleet.service.schema.engine["job_failure"])).all()
    assert failures == []

    # SIGTERM: every app server, worker and the scheduler hands its work back and exits 0
    assert set(fleet.stop().values()) == {0}
    with fleet.engine.connect() as conn:
        assert conn.execute(sa.select(workers.c.stopped_at).where(
            workers.c.stopped_at.is_(None), workers.c.pid.in_(
                [w.pid for w in fleet.workers if w.returncode == 0]))).all() == []
        leases_left = conn.execute(sa.select(fleet.service.schema.engine["lease"])).all()
    assert leases_left == []  # the scheduler gave its lease back


def _ticks_finished(fleet) -> bool:
    ticks = fleet.service.schema.engine["automation_tick"]
    with fleet.engine.connect() as conn:
        rows = conn.execute(sa.select(ticks.c.finished_at)).all()
    return bool(rows) and all(r.finished_at for r in rows)


def _tick_in_progress(fleet) -> str | None:
    ticks = fleet.service.schema.engine["automation_tick"]
    with fleet.engine.connect() as conn:
        row = conn.execute(sa.select(ticks.c.lease_owner, ticks.c.matched)).first()
    return row.lease_owner if row and row.lease_owner and row.matched >= 100 else None


def _import_in_progress(jobs, admin, job_id) -> str | None:
    job = jobs.get(admin, job_id)
    return job["lease_owner"] if job["lease_owner"] and job["done_rows"] >= 1000 else None


def _apply_through_the_console(base: str) -> int:
    """Sign in as root on `base` and apply the site folder's configuration; return the
    version now applied."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def page(path, form=None):
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        with opener.open(base + path, data=data, timeout=30) as response:
            return response.read().decode()

    def csrf(text):
        return re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)

    page("/login", {"username": "root", "password": "pw-root",
                    "csrf_token": csrf(page("/login"))})
    site_page = page("/admin/site")
    plan = re.search(r'name="plan" value="([^"]+)"', site_page).group(1)
    done = page("/admin/site/migrate", {"plan": plan, "confirm": "1",
                                        "csrf_token": csrf(site_page)})
    assert "admin-tabs" in done
    with urllib.request.urlopen(base + "/readyz", timeout=5) as response:
        ready = json.loads(response.read())
    assert ready["status"] == "ready", ready
    return ready["configuration_version"]
