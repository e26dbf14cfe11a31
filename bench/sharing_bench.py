"""Benchmark: a list page under a sharing rule against the same page under `all`.

The fixture site tests/fixtures/sites/sharing: visits readable by a medical rep through the
`coverage` assignments of (hospital, product line), plus the rep's own. Data: 2,000 hospitals,
500,000 visits over two lines, 40 reps each covering 100 (hospital, line) pairs. The page:
50 visits in the default order (by id), with the capped total, as a manager (`all`) and as
one rep (the rule), measured in alternating rounds. The rows are loaded around the record
service, so the share rows are rebuilt (`crm rebuild-sharing`), and that is timed; the rep's
page is checked against the rule worked out directly, before and after timing the writes
that maintain share rows (a visit created, an assignment added and ended). Run by hand:

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
from engine.storage.sharing import rebuild_all  # noqa: E402

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
    # the rows went in around the record service, as a restore would: rebuild the share rows
    # (what `crm rebuild-sharing` does), timed as the cost of a full recalculation
    started = time.perf_counter()
    rebuild_all(db, registry, service.schema)
    rebuilt = time.perf_counter() - started
    if db.dialect.name == "postgresql":
        with db.begin() as conn:  # the ids were given: move the sequences past them
            for table in tables.values():
                conn.execute(sa.text("SELECT setval(pg_get_serial_sequence(:t, 'id'), "
                                     f'(SELECT max(id) FROM "{table.name}"))'),
                             {"t": table.name})
        with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with db.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    return service, boss, users.caller(rep_ids[0]), rebuilt


def timings(service, callers, runs: int = 200) -> list[tuple[float, float, int]]:
    """Median and p95 ms of the page for each caller, measured in alternating rounds so
    that load from elsewhere on a shared machine falls on both alike."""
    query = parse_query({"limit": "50"})
    samples: list[list[float]] = [[] for _ in callers]
    totals = [service.list(caller, "visit", query).total for caller in callers]  # warm up
    for _ in range(runs // 20):
        for i, caller in enumerate(callers):
            for _ in range(20):
                started = time.perf_counter()
                service.list(caller, "visit", query)
                samples[i].append((time.perf_counter() - started) * 1000)
    result = []
    for found, total in zip(samples, totals):
        found.sort()
        result.append((statistics.median(found), found[int(len(found) * 0.95) - 1], total))
    return result


def check(service, rep) -> None:
    """Fail unless the rep's page and total are what the rule means, worked out directly."""
    visit, coverage = service.schema.entities["visit"], service.schema.entities["coverage"]
    shared = sa.select(visit.c.id).select_from(coverage.join(visit, sa.and_(
        visit.c.hospital == coverage.c.hospital, visit.c.line == coverage.c.line))).where(
        coverage.c.rep == rep.user_id, coverage.c.deleted_at.is_(None))
    own = sa.select(visit.c.id).where(visit.c.owner == rep.user_id)
    every = sa.union(shared, own).subquery()
    with service.engine.connect() as conn:
        expected = [r[0] for r in conn.execute(sa.select(every.c.id).order_by(every.c.id)
                                               .limit(50))]
        count = conn.execute(sa.select(sa.func.count()).select_from(every)).scalar()
    page = service.list(rep, "visit", parse_query({"limit": "50", "count": "exact"}))
    assert [r["id"] for r in page.data] == expected and page.total == count, "wrong page"


def write_costs(service, boss, rep) -> tuple[float, float]:
    """Median ms of creating a visit, and of adding and ending a coverage assignment (whose
    ~125 visits' share rows are added, then removed), each through the record service."""
    visit_ms, coverage_ms = [], []
    coverage = service.schema.entities["coverage"]
    with service.engine.connect() as conn:
        covered = {r[0] for r in conn.execute(sa.select(coverage.c.hospital).where(
            coverage.c.rep == rep.user_id, coverage.c.line == "onco"))}
    free = [h for h in range(2000, 0, -1) if h not in covered]
    for i in range(30):
        started = time.perf_counter()
        service.create(boss, "visit", {"hospital": 1 + i, "line": "cardio", "amount": "1"})
        visit_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        made = service.create(boss, "coverage", {"rep": rep.user_id, "hospital": free[i],
                                                 "line": "onco"})
        service.delete(boss, "coverage", made["id"], made["version"])
        coverage_ms.append((time.perf_counter() - started) * 1000)
    return statistics.median(visit_ms), statistics.median(coverage_ms)


def run(url: str, name: str, visits: int) -> list[str]:
    service, boss, rep, rebuilt = build(url, visits)
    check(service, rep)
    lines = []
    measured = timings(service, [boss, rep])
    for label, (median, p95, total) in zip(("`all` (manager)", "sharing rule (rep)"), measured):
        lines.append(f"| {name} | {label} | {total:,} | {median:.1f} | {p95:.1f} |")
    lines.append(f"| {name} | rule / all | | {measured[1][0] / measured[0][0]:.2f}x | "
                 f"{measured[1][1] / measured[0][1]:.2f}x |")
    visit_ms, coverage_ms = write_costs(service, boss, rep)
    check(service, rep)
    lines.append(f"<!-- {name}: rebuild of every share row {rebuilt:.1f} s; create a visit "
                 f"{visit_ms:.1f} ms; add and end a coverage {coverage_ms:.1f} ms (medians) -->")
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
