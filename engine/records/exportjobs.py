"""Exports of large lists, written in the background (`exports.run`, engine/runtime).

A list export of more than INLINE_ROWS records is not written while the browser waits: it
becomes a row of `crm_export_job` (the list's filters, search and sort, the format and the
user's language) and a job. A worker claims it with a lease, writes the file as the user who
asked (the records and fields they may read, formulas neutralised, exactly as the list's own
export), keeps its progress in the row for the page that shows it, and stores the file there
for its user to download for KEPT. A worker that dies leaves the job to the next one (the file
is written again from the start: nothing of a half-written file is kept).
"""

from __future__ import annotations

import datetime as dt
import io
import time
from typing import Callable

import sqlalchemy as sa

from engine.errors import BadRequest, NotFound, RecordError
from engine.records.access import Caller
from engine.records.listing import parse_query
from engine.records.service import now
from engine.records.transfer import export_rows, labelled_header, write_csv, write_xlsx
from engine.storage import leases
from engine.storage.database import after_commit, write_transaction

INLINE_ROWS = 5000  # a list with more records than this is exported in the background
KEPT = dt.timedelta(days=2)
PROGRESS_EVERY = 0.5
MIME = {"csv": "text/csv; charset=utf-8",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class ExportJobs:
    def __init__(self, service):
        self.service = service
        self.jobs = service.schema.engine["export_job"]

    def create(self, caller: Caller, entity_name: str, params: dict[str, str], fmt: str,
               total: int | None = None) -> int:
        """Queue an export of the list `params` describe (its filters, q and sort)."""
        entity = self.service.entity(entity_name)
        if fmt not in MIME:
            raise BadRequest(f"format: csv or xlsx, not {fmt!r}", {"format": ["csv or xlsx"]})
        parse_query(params)  # refused here, with the parameter named, not in the worker
        stamp = now()
        name = f"{entity.name}-{stamp.date().isoformat()}.{fmt}"
        j = self.jobs
        with write_transaction(self.service.engine) as conn:
            conn.execute(j.delete().where(j.c.created_at < stamp - KEPT))
            export_id = conn.execute(j.insert().values(
                user_id=caller.user_id, entity=entity.name, format=fmt, query=dict(params),
                locale=caller.locale, status="queued", done_rows=0, total_rows=total,
                file_name=name, created_at=stamp, updated_at=stamp)).inserted_primary_key[0]
            after_commit(conn, lambda: self.service.queue.send("exports.run",
                                                               export_id=export_id))
        return export_id

    def get(self, caller: Caller, export_id: int) -> dict:
        """The caller's own export (without its file)."""
        j = self.jobs
        columns = [c for c in j.c if c.name != "content"]
        with self.service.engine.connect() as conn:
            row = conn.execute(sa.select(*columns).where(
                j.c.id == export_id, j.c.user_id == caller.user_id)).mappings().first()
        if row is None:
            raise NotFound(f"no export {export_id}")
        job = dict(row)
        lease = job["lease_until"]
        job["state"] = "interrupted" if job["status"] == "running" and (
            lease is None or lease < now()) else job["status"]
        return job

    def download(self, caller: Caller, export_id: int) -> tuple[str, str, bytes]:
        job = self.get(caller, export_id)
        with self.service.engine.connect() as conn:
            data = conn.execute(sa.select(self.jobs.c.content).where(
                self.jobs.c.id == export_id)).scalar()
        if job["status"] != "done" or data is None:
            raise NotFound("this export has no file yet")
        return job["file_name"], MIME[job["format"]], data

    def waiting(self, again_after: float = 0.0) -> list[int]:
        """Exports queued or interrupted that nobody holds or asked for lately (marked)."""
        at = now()
        j = self.jobs
        with write_transaction(self.service.engine) as conn:
            ids = [r[0] for r in conn.execute(sa.select(j.c.id).where(
                j.c.status.in_(("queued", "running")), leases.free(j, at),
                j.c.updated_at <= at - dt.timedelta(seconds=again_after)).order_by(j.c.id))]
            if ids:
                conn.execute(j.update().where(j.c.id.in_(ids)).values(updated_at=at))
        return ids

    def run(self, export_id: int, owner: str,
            stopping: Callable[[], bool] | None = None) -> str | None:
        """Claim the export and write its file; return "done" or "failed", or None when it
        was not this worker's to run or it stopped early (released, to be run again)."""
        j = self.jobs
        # a file is written again from its start: nothing of a half-written one is kept
        if not leases.claim_job(self.service.engine, j, export_id, owner, done_rows=0):
            return None
        with self.service.engine.connect() as conn:
            job = dict(conn.execute(sa.select(j.c.user_id, j.c.entity, j.c.format, j.c.query,
                                              j.c.locale).where(j.c.id == export_id))
                       .mappings().one())
        try:
            from engine.records.users import Users
            users = Users(self.service.registry, self.service.engine, self.service.schema)
            caller = users.caller(job["user_id"], locale=job["locale"])
            entity = self.service.entity(job["entity"])
            rows = export_rows(self.service, caller, entity.name, parse_query(job["query"]))
            counted = _Counted(rows, lambda n: self._progress(export_id, owner, n), stopping)
            header = next(counted)
            content = self._write(job["format"], entity, [
                labelled_header(entity, header, caller.locale)], counted)
        except _Stopped:
            self._end(export_id, owner, status="running", lease_owner=None, lease_until=None)
            return None
        except RecordError as exc:
            self._end(export_id, owner, status="failed", error=exc.message, finished_at=now(),
                      lease_owner=None, lease_until=None)
            return "failed"
        done = self._end(export_id, owner, status="done", content=content,
                         done_rows=counted.count, finished_at=now(), lease_owner=None,
                         lease_until=None)
        return "done" if done else None

    @staticmethod
    def _write(fmt: str, entity, first: list, rows) -> bytes:
        def all_rows():
            yield from first
            yield from rows
        if fmt == "csv":
            out = io.StringIO()
            write_csv(all_rows(), out)
            return out.getvalue().encode("utf-8")
        out = io.BytesIO()
        write_xlsx(all_rows(), out, entity.name)
        return out.getvalue()

    def _progress(self, export_id: int, owner: str, done: int) -> None:
        self._end(export_id, owner, done_rows=done, lease_until=leases.lease_end())

    def _end(self, export_id: int, owner: str, **values) -> bool:
        j = self.jobs
        with write_transaction(self.service.engine) as conn:
            return bool(conn.execute(j.update().where(j.c.id == export_id,
                                                      j.c.lease_owner == owner)
                                     .values(updated_at=now(), **values)).rowcount)


class _Stopped(Exception):
    pass


class _Counted:
    """The export's rows, counted as they are read, with progress written (and the lease
    renewed) every PROGRESS_EVERY seconds, stopping when the worker stops."""

    def __init__(self, rows, report: Callable[[int], None], stopping):
        self.rows, self.report, self.stopping = iter(rows), report, stopping
        self.count, self.first = 0, True
        self.reported = time.monotonic()

    def __iter__(self):
        return self

    def __next__(self):
        row = next(self.rows)
        if self.first:  # the header
            self.first = False
            return row
        self.count += 1
        if time.monotonic() - self.reported >= PROGRESS_EVERY:
            if self.stopping is not None and self.stopping():
                raise _Stopped()
            self.report(self.count)
            self.reported = time.monotonic()
        return row
