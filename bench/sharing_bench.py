"""Benchmark: a list page under a sharing rule against the same page under `all`.

The fixture site tests/fixtures/sites/sharing: visits readable by a medical rep through the
`coverage` assignments of (hospital, product line), plus the rep's own. Data: 2,000 hospitals,
500,000 visits over two lines, 40 reps each covering 100 (hospital, line) pairs. The page:
50 visits, newest first (the default order), with the capped total, as a manager (`all`) and
as one rep (the rule). Run by hand:

    python bench/sharing_bench.py [--visits 500000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

import engine  # noqa: E402
from engine.records.listing import parse_query  # noqa: E402
from engine.records.service import RecordService  # noqa: E402
from engine.records.users import Users  # noqa: E402
from engine.storage.database import connect  # noqa: E402
from engine.storage.driver import write_rows  # noqa: E402
from engine.storage.migrate import migrate  # noqa: E402

SITE = REPO / "tests" / "fixtures" / "sites" / "sharing"
ROOT = REPO / "tests" / "fixtures" / "bare_root"


def build(url: str, visits: int, hospitals: int = 2000, reps: int = 40, pairs: int = 100):
    registry = engine.load_registry(site=SITE, root=ROOT)
    db = connect(url)
    migrate(db, registry)
    service = RecordService(registry, db)
    users = Users(registry, db, service.schema)
    boss = users.caller(users.create("boss", "pw", ["manager"]))
    rep_ids = [users.create(f"rep{i}", "pw", ["med_rep"]) for i in range(reps)]
    stamp = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    system = {"version": 1, "created_at": stamp, "updated_at": stamp, "owner": boss.user_id}
    rnd = random.Random(3)
    tables = service.schema.entities
    with db.begin() as conn:
        write_rows(conn, tables["hospital"], [
            {"id": i, "name": f"医院 {i}", "region": "east" if i % 2 else "west", **system}
            for i in range(1, hospitals + 1)])
        coverage, seen = [], set()
        for rep in rep_ids:
            while len([c for c in coverage if c["rep"] == rep]) < pairs:
                pair = (rnd.randint(1, hospitals), rnd.choice(["cardio", "onco"]))
                if (rep, pair) in seen:
                    continue
                seen.add((rep, pair))
                coverage.append({"id": len(coverage) + 1, "rep": rep, "hospital": pair[0],
                                 "line": pair[1], **system})
        write_rows(conn, tables["coverage"], coverage)
        for start in range(0, visits, 50_000):
            write_rows(conn, tables["visit"], [
                {"id": i, "hospital": rnd.randint(1, hospitals),
                 "line": rnd.choice(["cardio", "onco"]), "notes": f"拜访记录 {i}",
                 "amount": rnd.randint(0, 5000), **system}
                for i in range(start + 1, min(start + 50_000, visits) + 1)])
    if db.dialect.name == "postgresql":
        with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with db.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    return service, boss, users.caller(rep_ids[0])


def timings(service, caller, runs: int = 200) -> tuple[float, float, int]:
    query = parse_query({"limit": "50"})
    service.list(caller, "visit", query)  # warm up
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        page = service.list(caller, "visit", query)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], page.total


def run(url: str, name: str, visits: int) -> list[str]:
    service, boss, rep = build(url, visits)
    lines = []
    results = {}
    for label, caller in (("`all` (manager)", boss), ("sharing rule (rep)", rep)):
        median, p95, total = timings(service, caller)
        results[label] = p95
        lines.append(f"| {name} | {label} | {total:,} | {median:.1f} | {p95:.1f} |")
    ratio = results["sharing rule (rep)"] / results["`all` (manager)"]
    lines.append(f"| {name} | rule / all (p95) | | | {ratio:.2f}x |")
    service.engine.dispose()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--visits", type=int, default=500_000)
    parser.add_argument("--postgres")
    args = parser.parse_args()
    print("| database | page as | total (capped) | median ms | p95 ms |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for line in run(f"sqlite:///{tmp}/sharing.db", "SQLite", args.visits):
            print(line)
    if args.postgres:
        admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text('DROP DATABASE IF EXISTS "crm_sharing_bench" WITH (FORCE)'))
            c.execute(sa.text('CREATE DATABASE "crm_sharing_bench"'))
        url = sa.engine.make_url(args.postgres).set(database="crm_sharing_bench")
        for line in run(url.render_as_string(False), "PostgreSQL", args.visits):
            print(line)


if __name__ == "__main__":
    main()
