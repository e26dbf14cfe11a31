"""The tables of background work (engine/runtime): who works, what failed, what is claimed.

Work itself lives in the tables of what it is about (a webhook in `crm_outbox`, a schedule
tick in `crm_automation_tick`, an import in `crm_import_job`), each row claimed with a lease
(`lease_owner`, `lease_until`). These tables hold what belongs to no such row: a lease on
singleton work (fetching one mailbox, rebuilding the share rows), the workers' heartbeats,
jobs that failed for good, an import's rejected rows as it goes, export files, and settings
every process of a site must agree on.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.storage.database import insert_or_merge, write_transaction


def runtime_tables(metadata: sa.MetaData, id_type, datetime_type) -> dict[str, sa.Table]:
    """Define the runtime's tables (after crm_user: exports and rejections refer to it)."""
    lease = sa.Table(  # singleton work: at most one holder at a time, until `until`
        "crm_lease", metadata,
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("owner", sa.String(120), nullable=False),
        sa.Column("until", datetime_type, nullable=False),
    )
    worker = sa.Table(  # one row per worker process, refreshed while it runs
        "crm_worker", metadata,
        sa.Column("id", sa.String(120), primary_key=True),  # host:pid:random
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),  # worker | scheduler | embedded
        sa.Column("queues", sa.JSON, nullable=False),
        sa.Column("config_version", sa.Integer, nullable=False),
        sa.Column("started_at", datetime_type, nullable=False),
        sa.Column("seen_at", datetime_type, nullable=False),
        sa.Column("stopped_at", datetime_type),
        sa.Column("jobs_done", sa.Integer, nullable=False, default=0),
        sa.Column("jobs_failed", sa.Integer, nullable=False, default=0),
        sa.Index("crm_worker_seen", "seen_at"),
    )
    job_failure = sa.Table(  # a job that will not be tried again, for the admin to see
        "crm_job_failure", metadata,
        sa.Column("id", id_type(), primary_key=True, autoincrement=True),
        sa.Column("job", sa.String(63), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("config_version", sa.Integer),  # the configuration that enqueued it
        sa.Column("worker", sa.String(120)),
        sa.Column("at", datetime_type, nullable=False),
        sa.Index("crm_job_failure_at", "at", "id"),
    )
    import_rejection = sa.Table(  # rejected rows of a running import, written per batch
        "crm_import_rejection", metadata,
        sa.Column("job_id", id_type(), sa.ForeignKey("crm_import_job.id", ondelete="CASCADE"),
                  primary_key=True, autoincrement=False),
        sa.Column("line", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("reasons", sa.JSON, nullable=False),
    )
    export_job = sa.Table(  # a list exported in the background, kept for its user a while
        "crm_export_job", metadata,
        sa.Column("id", id_type(), primary_key=True, autoincrement=True),
        sa.Column("user_id", id_type(), sa.ForeignKey("crm_user.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("entity", sa.String(63), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),  # csv | xlsx
        sa.Column("query", sa.JSON, nullable=False),  # the list's filters, search and sort
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # queued | running | done | failed
        sa.Column("done_rows", sa.Integer, nullable=False, default=0),
        sa.Column("total_rows", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("content", sa.LargeBinary),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("lease_owner", sa.String(120)),
        sa.Column("lease_until", datetime_type),
        sa.Column("created_at", datetime_type, nullable=False),
        sa.Column("updated_at", datetime_type, nullable=False),
        sa.Column("finished_at", datetime_type),
        sa.Index("crm_export_job_user", "user_id", "id"),
    )
    setting = sa.Table(  # values every process of the site shares (the fallback signing key)
        "crm_setting", metadata,
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    return {"lease": lease, "worker": worker, "job_failure": job_failure,
            "import_rejection": import_rejection, "export_job": export_job,
            "setting": setting}


def shared_setting(engine: sa.Engine, table: sa.Table, name: str, proposed: str) -> str:
    """The site's value of setting `name` (crm_setting): `proposed` when this process is the
    first to ask, else what the first one stored; every process and machine gets the same."""
    with write_transaction(engine) as conn:
        conn.execute(insert_or_merge(conn, table).values(name=name, value=proposed)
                     .on_conflict_do_nothing())
        return conn.execute(sa.select(table.c.value).where(table.c.name == name)).scalar_one()
