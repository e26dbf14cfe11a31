"""Benchmark: workflow transitions with audit, each in its own transaction, on SQLite.

Compared in the same run with the same work in raw SQL (an UPDATE with the version check and
an audit INSERT per transaction, through sqlite3). Run by hand:

    python bench/transition_bench.py [--records 3000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import engine  # noqa: E402
from engine.records.access import SYSTEM  # noqa: E402
from engine.records.bulk import create_many  # noqa: E402
from engine.records.service import RecordService  # noqa: E402
from engine.storage.database import connect, write_transaction  # noqa: E402
from engine.storage.migrate import migrate  # noqa: E402

ENTITY = "entity: task\nfields:\n  title: {type: string, required: true}\n" \
         "  amount: {type: money}\n"
WORKFLOW = """workflow: task_flow
entity: task
field: state
initial: open
states: {open: {}, doing: {}, done: {final: true}}
transitions:
  start: {from: open, to: doing, require: [title]}
  finish: {from: doing, to: done, guard: "amount == null || amount >= 0.0"}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=3000)
    args = parser.parse_args()
    n = args.records
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        (site / "entities").mkdir(parents=True)
        (site / "workflows").mkdir()
        (site / "app.yaml").write_text("app: tb\n")
        (site / "entities" / "task.yaml").write_text(ENTITY)
        (site / "workflows" / "task.yaml").write_text(WORKFLOW)
        registry = engine.load_registry(site=site, root=REPO / "tests/fixtures/bare_root")
        db = connect(f"sqlite:///{tmp}/t.db")
        migrate(db, registry)
        service = RecordService(registry, db)
        with write_transaction(db) as conn:
            create_many(service, SYSTEM, "task", [{"title": f"t{i}", "amount": "5"}
                                                 for i in range(n)], conn)
        started = time.perf_counter()
        for record_id in range(1, n + 1):
            service.transition(SYSTEM, "task", record_id, "start")
        service_s = time.perf_counter() - started
        db.dispose()

        raw = sqlite3.connect(f"{tmp}/t.db", isolation_level=None)
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA synchronous=NORMAL")
        started = time.perf_counter()
        for record_id in range(1, n + 1):
            stamp = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(" ")
            raw.execute("BEGIN IMMEDIATE")
            cur = raw.execute("UPDATE e_task SET state = 'done', version = version + 1, "
                              "updated_at = ? WHERE id = ? AND version = 2 AND "
                              "deleted_at IS NULL", (stamp, record_id))
            assert cur.rowcount == 1
            raw.execute("INSERT INTO crm_audit (entity, record_id, action, user_id, at, changes)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        ("task", record_id, "transition:finish", None, stamp,
                         json.dumps({"state": ["doing", "done"]})))
            raw.execute("COMMIT")
        raw_s = time.perf_counter() - started
        raw.close()
    print(f"| {n:,} | {n / service_s:,.0f} | {n / raw_s:,.0f} | {service_s / raw_s:.2f}x |")


if __name__ == "__main__":
    main()
