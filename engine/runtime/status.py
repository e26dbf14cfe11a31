"""What the background work is doing, read from the database for the admin console's Jobs
page and the metrics: the workers' heartbeats, the work waiting, the jobs that failed."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

UTC = dt.timezone.utc
SILENT_AFTER = dt.timedelta(seconds=30)  # a worker not heard of this long is shown as gone
SHOWN_FOR = dt.timedelta(days=1)  # workers gone longer than this are not listed


def waiting_work(service) -> dict[str, int]:
    """Work waiting in the database, by kind."""
    tables = service.schema.engine
    o, t, i, e = (tables["outbox"], tables["automation_tick"], tables["import_job"],
                  tables["export_job"])
    f = tables["job_failure"]
    day = dt.datetime.now(UTC) - dt.timedelta(days=1)
    with service.engine.connect() as conn:
        def count(table, *where) -> int:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)
                                    .where(*where)).scalar() or 0)
        return {
            "webhooks": count(o, o.c.delivered_at.is_(None), o.c.given_up_at.is_(None)),
            "ticks": count(t, t.c.finished_at.is_(None)),
            "imports": count(i, i.c.status.in_(("queued", "running"))),
            "exports": count(e, e.c.status.in_(("queued", "running"))),
            "failed_jobs_24h": count(f, f.c.at >= day),
        }


def workers(service, now: dt.datetime | None = None) -> list[dict]:
    """The worker and scheduler processes heard of in the last day, newest first, each with
    `state`: running, stopped (shut down cleanly) or gone (stopped sending heartbeats)."""
    now = now or dt.datetime.now(UTC)
    w = service.schema.engine["worker"]
    with service.engine.connect() as conn:
        rows = conn.execute(sa.select(w).where(w.c.seen_at >= now - SHOWN_FOR)
                            .order_by(w.c.started_at.desc())).mappings().all()
    found = []
    for row in rows:
        row = dict(row)
        row["state"] = "stopped" if row["stopped_at"] is not None else (
            "running" if now - row["seen_at"] <= SILENT_AFTER else "gone")
        found.append(row)
    return found


def failures(service, limit: int = 50, before: int | None = None) -> list[dict]:
    """Jobs that failed for good, newest first (keyset page: ids below `before`)."""
    f = service.schema.engine["job_failure"]
    query = sa.select(f).order_by(f.c.id.desc()).limit(limit)
    if before is not None:
        query = query.where(f.c.id < before)
    with service.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
