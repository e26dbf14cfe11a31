"""Benchmark: background jobs on Dramatiq + Redis + PostgreSQL (engine/runtime).

1. Webhook throughput: N outbox messages delivered to a loopback receiver by 3 `crm worker`
   processes (8 threads each), from the moment their jobs are enqueued until the last is
   marked delivered; baseline: the same deliveries by one direct call in this process
   (`Webhooks.deliver`, no queue).
2. Queue overhead per job: a job that claims nothing, sent N times through Redis to a worker
   thread in this process vs called N times directly (same JobRunner code path).
3. Import: the wizard's import of R rows (a contact entity with a reference, enums, money and
   a validation rule) as an `imports.run` job through Redis and a worker, vs `import_rows`
   called directly, each on a fresh database.

    python bench/queue_bench.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test \
        [--redis redis://127.0.0.1:6379/0] [--messages 5000] [--rows 50000]
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import sqlalchemy as sa  # noqa: E402

import engine  # noqa: E402
from engine.records.access import SYSTEM  # noqa: E402
from engine.records.importjobs import ImportJobs  # noqa: E402
from engine.records.service import RecordService  # noqa: E402
from engine.records.transfer import import_rows  # noqa: E402
from engine.records.users import Users  # noqa: E402
from engine.storage.database import connect, write_transaction  # noqa: E402
from engine.storage.migrate import migrate  # noqa: E402

BARE_ROOT = REPO / "tests" / "fixtures" / "bare_root"
CONTACT = """
entity: contact
fields:
  name: {type: string, required: true, max_length: 100}
  account: {type: reference, to: account}
  email: {type: email}
  tier: {type: enum, options: [a, b, c]}
  source: {type: enum, options: [web, fair, referral, call]}
  revenue: {type: money, min: 0}
  employees: {type: integer, min: 0}
  since: {type: date}
validations:
  - rule: "employees == null || employees < 100000"
    message: {en: "Too many employees", zh: "员工数过多"}
"""
ACCOUNT = """
entity: account
fields:
  name: {type: string, required: true}
"""


def fresh_database(server: str, admin) -> tuple[str, str]:
    name = f"crm_qbench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return sa.engine.make_url(server).set(database=name).render_as_string(False), name


def drop(admin, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# ---------------------------------------------------------------- 1. webhook throughput

def webhook_throughput(server: str, redis_url: str, admin, messages: int) -> list[str]:
    from runtimesite import HOOK_KEY, Receiver, runtime_site
    os.environ["CRM_TEST_HOOK_KEY"] = HOOK_KEY
    receiver = Receiver()
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        site = runtime_site(Path(tmp), receiver.port)
        registry = engine.load_registry(site=site, root=BARE_ROOT)

        def outbox_of(url):
            db = connect(url)
            migrate(db, registry)
            service = RecordService(registry, db)  # no queue: messages wait in the outbox
            for start in range(0, messages, 500):
                with write_transaction(db) as conn:
                    for i in range(start, min(messages, start + 500)):
                        service.create(SYSTEM, "ticket", {"subject": f"t{i}", "code": f"C{i}"},
                                       conn=conn)
            return db, service

        # baseline: one direct call per 100 messages, in this process
        url, name = fresh_database(server, admin)
        db, service = outbox_of(url)
        started = time.perf_counter()
        while service.webhooks.deliver(None, limit=100):
            pass
        direct = time.perf_counter() - started
        db.dispose()
        drop(admin, name)

        # through the queue: 3 workers x 8 threads (the same message ids again: count anew)
        receiver.counts.clear()
        url, name = fresh_database(server, admin)
        db, service = outbox_of(url)
        namespace = f"crm-bench-{uuid.uuid4().hex[:6]}"
        env = dict(os.environ, CRM_CONTENT_ROOT=str(BARE_ROOT), CRM_SITE=str(site),
                   CRM_DATABASE_URL=url, CRM_BROKER_URL=redis_url,
                   CRM_BROKER_NAMESPACE=namespace, CRM_LOG_LEVEL="WARNING")
        workers = [subprocess.Popen([sys.executable, str(REPO / "cli.py"), "worker",
                                     "--threads", "8"], env=env) for _ in range(3)]
        try:
            from engine.runtime.context import Runtime
            from engine.runtime.embedded import start_background
            os.environ["CRM_BROKER_NAMESPACE"] = namespace
            runtime = Runtime(registry, db, service=service, root=BARE_ROOT)
            sender = start_background(runtime, redis_url, scheduler=False)
            time.sleep(4)  # the workers start
            o = service.schema.engine["outbox"]
            with db.connect() as conn:
                ids = [r[0] for r in conn.execute(sa.select(o.c.id).order_by(o.c.id))]
            started = time.perf_counter()
            for i in range(0, len(ids), 50):  # what the app servers send after their commits
                sender.send("webhooks.deliver", ids=ids[i:i + 50])
            while True:
                with db.connect() as conn:
                    left = conn.execute(sa.select(sa.func.count()).select_from(o).where(
                        o.c.delivered_at.is_(None))).scalar()
                if not left:
                    break
                time.sleep(0.02)
            queued = time.perf_counter() - started
            sender.stop()
        finally:
            for w in workers:
                w.send_signal(signal.SIGTERM)
            for w in workers:
                w.wait(timeout=60)
            db.dispose()
            drop(admin, name)
    duplicates = receiver.duplicates()
    receiver.close()
    lines.append(f"| webhook deliveries, direct (1 thread, no queue) | {messages:,} | "
                 f"{direct:.2f} s | {messages / direct:,.0f}/s |")
    lines.append(f"| webhook deliveries, 3 workers x 8 threads via Redis | {messages:,} | "
                 f"{queued:.2f} s | {messages / queued:,.0f}/s |")
    lines.append(f"| duplicates received | | | {len(duplicates)} |")
    return lines


# ---------------------------------------------------------------- 2. per-job overhead

def job_overhead(server: str, redis_url: str, admin, jobs: int) -> list[str]:
    import dramatiq

    from engine.runtime.context import Runtime
    from engine.runtime.jobs import JobContext, deliver_webhooks
    from engine.runtime.queue import JobQueue, make_broker
    from engine.runtime.runner import JobRunner
    from runtimesite import runtime_site
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        site = runtime_site(Path(tmp), 9)
        registry = engine.load_registry(site=site, root=BARE_ROOT)
        url, name = fresh_database(server, admin)
        db = connect(url)
        migrate(db, registry)
        try:
            runtime = Runtime(registry, db, root=BARE_ROOT)
            context = JobContext(runtime.service, "bench/x", lambda: False, lambda *a, **k: None)
            started = time.perf_counter()
            for _ in range(jobs):
                deliver_webhooks(context, ids=[10**9])  # claims nothing: one UPDATE
            direct = (time.perf_counter() - started) / jobs
            runner = JobRunner(runtime)
            broker = make_broker(redis_url, f"crm-bench-{uuid.uuid4().hex[:6]}")
            queue = JobQueue(broker, runner.execute, lambda: runtime.version)
            worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
            worker.start()
            started = time.perf_counter()
            for _ in range(jobs):
                queue.send("webhooks.deliver", ids=[10**9])
            while runner.done < jobs:
                time.sleep(0.001)
            queued = (time.perf_counter() - started) / jobs
            worker.stop()
            broker.flush_all()
            broker.close()
        finally:
            db.dispose()
            drop(admin, name)
    lines.append(f"| a job that claims nothing, called directly | {jobs:,} | "
                 f"{direct * 1000:.2f} ms/job | |")
    lines.append(f"| the same job through Redis and a worker thread (sequential) | {jobs:,} | "
                 f"{queued * 1000:.2f} ms/job | overhead {1000 * (queued - direct):.2f} ms/job |")
    return lines


# ---------------------------------------------------------------- 3. import via the queue

def import_speed(server: str, redis_url: str, admin, rows: int) -> list[str]:
    import dramatiq

    from engine.runtime.context import Runtime
    from engine.runtime.queue import JobQueue, make_broker
    from engine.runtime.runner import JobRunner
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        (site / "entities").mkdir(parents=True)
        (site / "app.yaml").write_text("app: qbench\n")
        (site / "roles.yaml").write_text("roles: {}\n")
        (site / "entities" / "contact.yaml").write_text(CONTACT)
        (site / "entities" / "account.yaml").write_text(ACCOUNT)
        registry = engine.load_registry(site=site, root=BARE_ROOT)
        header = ["name", "account", "email", "tier", "source", "revenue", "employees", "since"]

        def prepare():
            url, name = fresh_database(server, admin)
            db = connect(url)
            migrate(db, registry)
            service = RecordService(registry, db)
            accounts = [service.create(SYSTEM, "account", {"name": f"account {i}"})["id"]
                        for i in range(50)]
            users = Users(registry, db, service.schema)
            admin_caller = users.caller(users.create("root", "pw", ["admin"]))
            return url, name, db, service, accounts, admin_caller

        def body_of(accounts):
            return [[f"contact {i}", str(accounts[i % 50]), f"c{i}@example.com", "abc"[i % 3],
                     ("web", "fair", "referral", "call")[i % 4], f"{i % 100000}.50",
                     str(i % 5000), f"20{10 + i % 15}-0{1 + i % 9}-1{i % 9}"]
                    for i in range(rows)]

        def content_of(accounts) -> bytes:
            lines = [",".join(header)] + [",".join(r) for r in body_of(accounts)]
            return ("\r\n".join(lines) + "\r\n").encode()

        def direct_run() -> float:
            from engine.records.importfiles import read_upload
            url, name, db, service, accounts, caller = prepare()
            content = content_of(accounts)
            gc.collect()  # both runs start from the same heap: the collector's state moves
            started = time.perf_counter()  # what `crm import` does: read the file, import it
            _, cells = read_upload(content, "csv")
            result = import_rows(service, caller, "contact", header, cells)
            took = time.perf_counter() - started
            assert result.created == rows and not result.rejected, result.rejected[:3]
            db.dispose()
            drop(admin, name)
            return took

        def queued_run() -> float:
            import datetime as dt
            url, name, db, service, accounts, caller = prepare()
            runtime = Runtime(registry, db, service=service, root=BARE_ROOT)
            runner = JobRunner(runtime)
            broker = make_broker(redis_url, f"crm-bench-{uuid.uuid4().hex[:6]}")
            queue = JobQueue(broker, runner.execute, lambda: runtime.version)
            runtime.use_queue(queue)
            worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
            worker.start()
            jobs = ImportJobs(service)
            job_id = jobs.upload(caller, "contact", "contacts.csv", content_of(accounts))
            jobs.save_mapping(caller, job_id, header, all_or_nothing=False)
            gc.collect()
            began = dt.datetime.now(dt.timezone.utc)
            jobs.start(caller, job_id)
            while jobs.get(caller, job_id)["state"] not in ("done", "failed"):
                time.sleep(0.2)  # seldom: the measure is the job's own finish time
            job = jobs.get(caller, job_id)
            took = (job["finished_at"] - began).total_seconds()
            assert job["created"] == rows and job["state"] == "done", job
            worker.stop()
            broker.flush_all()
            broker.close()
            db.dispose()
            drop(admin, name)
            return took

        # five times each, in the order D Q Q D D Q Q D D Q (each kind as often first as
        # second: PostgreSQL still writes out the previous run's pages during the next), the
        # median of each: the machine's noise is larger than the difference measured
        directs, queueds = [], []
        for kind in "DQQDDQQDDQ":
            (directs if kind == "D" else queueds).append(
                direct_run() if kind == "D" else queued_run())
        direct, queued = sorted(directs)[2], sorted(queueds)[2]
        print(f"<!-- direct runs {sorted(round(d, 2) for d in directs)}, queued runs "
              f"{sorted(round(q, 2) for q in queueds)} -->", flush=True)
    return [f"| import, the file read and `import_rows` called directly | {rows:,} | {direct:.2f} s | "
            f"{rows / direct:,.0f} rows/s |",
            f"| import as an `imports.run` job via Redis (checkpoint per batch) | {rows:,} | "
            f"{queued:.2f} s | {rows / queued:,.0f} rows/s ({100 * direct / queued:.0f}% of "
            f"direct) |"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", required=True)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=50000)
    parser.add_argument("--only", help="overhead, import, webhooks (comma-separated)")
    args = parser.parse_args()
    admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    print("| what | n | time | rate |")
    print("|---|---|---|---|")
    parts = args.only.split(",") if args.only else ["overhead", "import", "webhooks"]
    if "overhead" in parts:
        for line in job_overhead(args.postgres, args.redis, admin, args.jobs):
            print(line, flush=True)
    if "import" in parts:
        for line in import_speed(args.postgres, args.redis, admin, args.rows):
            print(line, flush=True)
    if "webhooks" in parts:
        for line in webhook_throughput(args.postgres, args.redis, admin, args.messages):
            print(line, flush=True)


if __name__ == "__main__":
    main()
