"""Benchmark: seeding each industry pack's sample data (`load_seeds`, as `crm seed` does).

For each pack, a new site is migrated and given one user per role (as `crm demo` and
tests/packworld.py do); only `load_seeds` is timed. With `--profile`, the run is profiled with
cProfile and the functions taking the most time (own and cumulative) are printed. Besides the
wall time, the CPU time of this process and the SQL statements sent are counted: on a shared
machine they vary far less than the wall time. With
`--dump FOLDER`, every table's rows (without the clock columns) are written as JSON, so two
runs (before and after a change) can be compared for what seeding wrote. Run by hand:

    python bench/seed_bench.py [--packs retail,pharma] [--postgres URL] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import decimal
import io
import json
import pstats
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

import engine  # noqa: E402
from engine.records.seeding import load_seeds  # noqa: E402
from engine.records.service import RecordService  # noqa: E402
from engine.records.users import Users  # noqa: E402
from engine.storage.database import connect  # noqa: E402
from engine.storage.driver import DriverStatement  # noqa: E402
from engine.storage.migrate import migrate  # noqa: E402

PACKS = ["manufacturing", "pharma", "retail"]
CLOCK_COLUMNS = {"created_at", "updated_at", "at", "deleted_at", "last_login_at",
                 "password_hash", "claimed_at", "sent_at", "next_run_at", "ran_at"}


def make_site(folder: Path, pack: str, url: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.yaml").write_text(f"app: bench\nlabel: Bench\npack: {pack}\n",
                                     encoding="utf-8")
    registry = engine.load_registry(site=folder, root=REPO)
    db = connect(url)
    migrate(db, registry)
    service = RecordService(registry, db)
    users = Users(registry, db, service.schema)
    for role in registry.roles:
        users.create(role, "pw", [role])
    return db, service, users


def dump(db: sa.Engine, path: Path) -> None:
    """Write every table's rows, ordered by id and without clock columns, as JSON."""
    meta = sa.MetaData()
    meta.reflect(db)
    out = {}
    with db.connect() as conn:
        for name, table in sorted(meta.tables.items()):
            if "id" not in table.c or name.startswith("alembic"):
                continue
            cols = [c for c in table.c if c.name not in CLOCK_COLUMNS]
            rows = conn.execute(sa.select(*cols).order_by(table.c.id)).all()
            out[name] = [list(r) for r in rows]

    def plain(value):
        if isinstance(value, decimal.Decimal):
            return float(value)
        if isinstance(value, (dt.date, dt.datetime)):
            return value.isoformat()
        return str(value)
    path.write_text(json.dumps(out, default=plain, sort_keys=True, ensure_ascii=False,
                               indent=0), encoding="utf-8")


def postgres_database(server: str):
    name = f"crm_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)

    def drop():
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return url, drop


def run(pack: str, kind: str, url: str, folder: Path, args) -> tuple[float, float, int, int]:
    db, service, users = make_site(folder, pack, url)
    statements = 0

    def count(*_):
        nonlocal statements
        statements += 1
    # what SQLAlchemy executes, and what the hot paths send straight to the driver
    sa.event.listen(db, "before_cursor_execute", count)
    driver_run = DriverStatement._run

    def counted_run(self, conn, values):
        count()
        return driver_run(self, conn, values)
    DriverStatement._run = counted_run
    profile = cProfile.Profile() if args.profile else None
    start, cpu = time.perf_counter(), time.process_time()
    if profile:
        profile.enable()
    lines = list(load_seeds(service, users))
    if profile:
        profile.disable()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    sa.event.remove(db, "before_cursor_execute", count)
    DriverStatement._run = driver_run
    records = sum(int(line.rsplit(": ", 1)[1].split()[0]) for line in lines
                  if line.endswith(" records"))
    if profile:
        for order in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats(order).print_stats(args.top)
            print(f"\n### {pack} on {kind}, by {order}\n```\n{out.getvalue()}\n```",
                  file=sys.stderr)
    if args.dump:
        Path(args.dump).mkdir(parents=True, exist_ok=True)
        dump(db, Path(args.dump) / f"{pack}-{kind}.json")
    db.dispose()
    return elapsed, cpu, records, statements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packs", default=",".join(PACKS))
    parser.add_argument("--postgres", help="a PostgreSQL server URL; a database is made and "
                                           "dropped per pack")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="profile with cProfile (slower) and print the top functions")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--dump", help="folder to write each seeded database as JSON into")
    args = parser.parse_args()
    rows = []
    for pack in args.packs.split(","):
        if not args.no_sqlite:
            with tempfile.TemporaryDirectory() as tmp:
                result = run(pack, "sqlite", f"sqlite:///{tmp}/crm.db", Path(tmp) / "site",
                             args)
            rows.append((pack, "SQLite", *result))
        if args.postgres:
            url, drop = postgres_database(args.postgres)
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    result = run(pack, "postgresql", url, Path(tmp) / "site", args)
            finally:
                drop()
            rows.append((pack, "PostgreSQL", *result))
    print("| pack | database | records seeded | wall s | CPU s (this process) | SQL statements |")
    print("|---|---|---|---|---|---|")
    for pack, kind, seconds, cpu, records, statements in rows:
        print(f"| {pack} | {kind} | {records:,} | {seconds:.1f} | {cpu:.1f} | {statements:,} |")


if __name__ == "__main__":
    main()
