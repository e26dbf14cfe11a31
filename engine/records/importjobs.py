"""Import jobs of the admin console's wizard: upload, column mapping, dry run, run, summary.

A job is a row of `crm_import_job`, so every step, in any server process, finds it: the
upload's bytes (until the run ends), the mapping, the run's progress and counts, and the file
of rejected rows. Rows are written by `transfer.import_rows`, the code of `crm import`: the same
checks, the importing admin's permissions, the audit trail, the line numbers.

Running is a background job (`imports.run`, engine/runtime): `start` marks the job queued and
asks the queue; a worker claims it with a lease and imports it batch by batch. Each batch's
transaction also moves the job's checkpoint (`done_rows`, the counts, the batch's rejected
rows in `crm_import_rejection`), so what the wizard shows is what committed, from any server,
and a worker killed halfway leaves a job that the next worker resumes from its last committed
batch once the lease runs out: no row is imported twice or lost. One exception: an
all-or-nothing run is one transaction, so it resumes from the start (nothing of it committed).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import sqlalchemy as sa

from engine.errors import Conflict, Forbidden, NotFound, RecordError
from engine.records.access import Caller
from engine.records.importfiles import (UploadRefused, cell_display, read_upload,
                                        rejected_file, sniff)
from engine.records.importmapping import check, remember, remembered, suggest, targets
from engine.records.service import now
from engine.records.transfer import ImportResult, ImportStopped, import_rows
from engine.registry.model import Entity
from engine.storage import leases
from engine.storage.database import after_commit, is_sqlite, write_transaction

log = logging.getLogger(__name__)

PREVIEW_ROWS = 1000  # rows the dry run checks: one batch of the import
PREVIEW_SHOWN = 20  # rejected rows the preview lists
SAMPLE_ROWS = 3  # rows shown under each column while mapping
PROGRESS_EVERY = 0.5  # seconds between two progress writes of an all-or-nothing run
UNRUN_KEPT = dt.timedelta(days=1)  # an upload never run is deleted after this
MIME = {"csv": "text/csv; charset=utf-8",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}

_live: dict[int, int] = {}  # job id -> rows done, for the runs of this process
_live_lock = threading.Lock()


@dataclass
class Preview:
    """What a dry run of the first rows found."""

    checked: int
    total: int
    created: int
    updated: int
    rejected: list[dict] = field(default_factory=list)  # line, reasons, cells
    rejected_count: int = 0
    unmapped_required: list[str] = field(default_factory=list)


class ImportJobs:
    """The wizard's jobs, for admins: each admin sees and runs only the jobs they uploaded."""

    def __init__(self, service):
        self.service = service
        self.jobs = service.schema.engine["import_job"]
        self.mappings = service.schema.engine["import_mapping"]
        self.rejections = service.schema.engine["import_rejection"]
        self._light = [c for c in self.jobs.c if c.name not in ("content", "rejected_file")]

    # ------------------------------------------------------------ what may be imported

    def entities(self, caller: Caller) -> list[Entity]:
        """The entities the caller may create records of from a file."""
        _admin(caller)
        found = []
        for entity in self.service.registry.entities.values():
            if entity.parent or self.service.access(caller, entity).create is None:
                continue
            if targets(self.service, caller, entity):
                found.append(entity)
        return found

    def _entity(self, caller: Caller, name: str) -> Entity:
        entity = self.service.entity(name)
        if entity.parent:
            raise NotFound(f"no entity '{name}'")
        if self.service.access(caller, entity).create is None:
            raise Forbidden(f"you may not create {name} records")
        return entity

    # ------------------------------------------------------------ steps

    def upload(self, caller: Caller, entity_name: str, file_name: str, content: bytes) -> int:
        """Keep an uploaded CSV or XLSX file for `entity_name`; return the new job's id."""
        _admin(caller)
        entity = self._entity(caller, entity_name)
        fmt = sniff(content)
        header, rows = read_upload(content, fmt)
        if not rows:
            raise UploadRefused("no_rows")
        stamp = now()
        with write_transaction(self.service.engine) as conn:
            conn.execute(self.jobs.delete().where(
                self.jobs.c.status.in_(("uploaded", "mapped")),
                self.jobs.c.created_at < stamp - UNRUN_KEPT))
            return conn.execute(self.jobs.insert().values(
                entity=entity.name, user_id=caller.user_id, file_name=file_name[:255] or "upload",
                format=fmt, content=content, header=header,
                sample=[[cell_display(c) for c in cells] for _, cells in rows[:SAMPLE_ROWS]],
                row_count=len(rows), status="uploaded", all_or_nothing=False, done_rows=0,
                created=0, updated=0, rejected=0, rolled_back=False, created_at=stamp,
                updated_at=stamp)).inserted_primary_key[0]

    def get(self, caller: Caller, job_id: int) -> dict:
        """The job (without its files), with `state`: its status, or "interrupted"."""
        _admin(caller)
        with self.service.engine.connect() as conn:
            row = conn.execute(sa.select(*self._light).where(
                self.jobs.c.id == job_id, self.jobs.c.user_id == caller.user_id)).mappings().first()
        if row is None:
            raise NotFound(f"no import {job_id}")
        return _with_state(dict(row))

    def recent(self, caller: Caller, limit: int = 10) -> list[dict]:
        _admin(caller)
        with self.service.engine.connect() as conn:
            rows = conn.execute(sa.select(*self._light).where(
                self.jobs.c.user_id == caller.user_id).order_by(self.jobs.c.id.desc())
                .limit(limit)).mappings().all()
        return [_with_state(dict(r)) for r in rows]

    def targets(self, caller: Caller, job: dict):
        return targets(self.service, caller, self._entity(caller, job["entity"]))

    def proposed_mapping(self, caller: Caller, job: dict) -> list[str]:
        """The job's mapping, else the one remembered for its header, else matched by name."""
        if job["mapping"] is not None:
            return list(job["mapping"])
        with self.service.engine.connect() as conn:
            known = remembered(conn, self.mappings, job["entity"], job["header"])
        return suggest(self.targets(caller, job), job["header"], known)

    def save_mapping(self, caller: Caller, job_id: int, mapping: list[str],
                     all_or_nothing: bool) -> None:
        """Check and keep the job's mapping, and remember it for files with this header."""
        job = self.get(caller, job_id)
        _editable(job)
        entity = self._entity(caller, job["entity"])
        mapping = check(targets(self.service, caller, entity), entity, job["header"], mapping)
        stamp = now()
        with write_transaction(self.service.engine) as conn:
            done = conn.execute(self.jobs.update().where(
                self.jobs.c.id == job_id, self.jobs.c.status.in_(("uploaded", "mapped")))
                .values(mapping=mapping, all_or_nothing=all_or_nothing, status="mapped",
                        updated_at=stamp))
            if done.rowcount != 1:
                raise Conflict("this import has already run")
            remember(conn, self.mappings, entity.name, job["header"], mapping, caller.user_id,
                     stamp)

    def preview(self, caller: Caller, job_id: int) -> Preview:
        """Check the first PREVIEW_ROWS rows as the run would, and write nothing."""
        job = self.get(caller, job_id)
        _editable(job, mapped=True)
        entity, header, rows, columns = self._prepared(caller, job)
        first = rows[:PREVIEW_ROWS]
        result = import_rows(self.service, caller, entity.name, columns, first, dry_run=True)
        cells = dict(first)
        preview = Preview(checked=len(first), total=len(rows), created=result.created,
                          updated=result.updated, rejected_count=len(result.rejected))
        for rejection in result.rejected[:PREVIEW_SHOWN]:
            preview.rejected.append({"line": rejection.line, "reasons": rejection.reasons,
                                     "cells": [cell_display(c) for c in cells[rejection.line]]})
        if "id" not in columns:
            mapped = set(columns)
            preview.unmapped_required = [
                name for name, fld in self.targets(caller, job).items()
                if fld.required and fld.default is None and name not in mapped]
        return preview

    def start(self, caller: Caller, job_id: int) -> None:
        """Queue a mapped job for a run (once, whichever process is asked)."""
        job = self.get(caller, job_id)
        _editable(job, mapped=True)
        stamp = now()
        with write_transaction(self.service.engine) as conn:
            claimed = conn.execute(self.jobs.update().where(
                self.jobs.c.id == job_id, self.jobs.c.status == "mapped")
                .values(status="queued", updated_at=stamp)).rowcount
            if claimed == 1:
                after_commit(conn, lambda: self.service.queue.send("imports.run", job_id=job_id))
        if claimed != 1:
            raise Conflict("this import has already run")

    def waiting(self, again_after: float = 0.0) -> list[int]:
        """The jobs queued or interrupted (their worker's lease ran out) that nobody holds and
        nobody asked for in the last `again_after` seconds; each is marked asked for."""
        at = now()
        j = self.jobs
        recent = at - dt.timedelta(seconds=again_after)
        with write_transaction(self.service.engine) as conn:
            ids = [r[0] for r in conn.execute(sa.select(j.c.id).where(
                j.c.status.in_(("queued", "running")), leases.free(j, at),
                j.c.updated_at <= recent).order_by(j.c.id))]
            if ids:
                conn.execute(j.update().where(j.c.id.in_(ids), leases.free(j, at))
                             .values(updated_at=at))
        return ids

    def run(self, job_id: int, owner: str | None = None,
            stopping: Callable[[], bool] | None = None) -> str | None:
        """Claim a queued (or interrupted) job and import its rows from its checkpoint on, as
        the admin who uploaded it; return its outcome, or None when it was not this worker's
        to run or it stopped early (it is then released, to be resumed)."""
        owner = owner or leases.new_identity()
        j = self.jobs
        if not leases.claim_job(self.service.engine, j, job_id, owner):
            return None
        try:
            with self.service.engine.connect() as conn:
                job = dict(conn.execute(sa.select(*self._light).where(j.c.id == job_id))
                           .mappings().one())
            caller = self._uploader(job)
            entity, header, rows, columns = self._prepared(caller, job)
            atomic = bool(job["all_or_nothing"])
            checkpoint = _Checkpoint(self, job, owner, stopping, resume=not atomic)
            result = import_rows(self.service, caller, entity.name, columns, rows,
                                 all_or_nothing=atomic, checkpoint=checkpoint,
                                 progress=_Progress(self, job_id, owner, atomic))
            rejected = result.rejected if atomic else self._rejections(job_id)
            cells = dict(rows)
            file = rejected_file(job["format"], header, [
                (cells[line], "; ".join(reasons)) for line, reasons in
                ((r.line, r.reasons) for r in rejected)]) if rejected else None
            if atomic:
                values = {"created": result.created, "updated": result.updated,
                          "rejected": len(result.rejected), "rolled_back": result.rolled_back}
            else:
                values = {}
            if not self._finish(job_id, owner, status="done", done_rows=len(rows),
                                rejected_file=file, **values):
                return None
            return "done"
        except (ImportStopped, _LeaseLost):
            self._release(job_id, owner)
            return None
        except RecordError as exc:
            self._finish(job_id, owner, status="failed", error=exc.message)
            return "failed"
        except Exception:  # a bug: logged in full, the admin sees that the run failed
            log.exception("import job %s failed", job_id)
            self._finish(job_id, owner, status="failed", error=None)
            return "failed"
        finally:
            with _live_lock:
                _live.pop(job_id, None)

    def progress(self, caller: Caller, job_id: int) -> dict:
        job = self.get(caller, job_id)
        done = max(job["done_rows"], _live.get(job_id, 0))
        total = job["row_count"]
        return {"state": job["state"], "done": done, "total": total,
                "percent": int(100 * done / total) if total else 100,
                "created": job["created"], "updated": job["updated"],
                "rejected": job["rejected"], "rolled_back": job["rolled_back"]}

    def rejected_download(self, caller: Caller, job_id: int) -> tuple[str, str, bytes]:
        """(file name, content type, bytes) of a finished job's rejected rows."""
        job = self.get(caller, job_id)
        with self.service.engine.connect() as conn:
            data = conn.execute(sa.select(self.jobs.c.rejected_file).where(
                self.jobs.c.id == job_id)).scalar()
        if data is None:
            raise NotFound("this import has no rejected rows")
        stem = job["file_name"].rsplit(".", 1)[0] or "import"
        return f"{stem}-rejected.{job['format']}", MIME[job["format"]], data

    # ------------------------------------------------------------ helpers

    def _prepared(self, caller: Caller, job: dict):
        """The entity, the file's header and rows, and the header `import_rows` gets: each
        column's target field, "" for an ignored one. The mapping is checked again: the
        configuration or the admin's roles may have changed since it was saved."""
        entity = self._entity(caller, job["entity"])
        with self.service.engine.connect() as conn:
            content = conn.execute(sa.select(self.jobs.c.content).where(
                self.jobs.c.id == job["id"])).scalar()
        if content is None:
            raise Conflict("this import has already run")
        header, rows = read_upload(content, job["format"])
        if header != job["header"]:  # the stored bytes are the upload's: this is a bug
            raise RuntimeError(f"import {job['id']}: the file's header changed")
        mapping = check(targets(self.service, caller, entity), entity, header, job["mapping"])
        return entity, header, rows, mapping

    def _uploader(self, job: dict) -> Caller:
        """The admin who uploaded the job, with the roles they have now."""
        from engine.records.users import Users
        users = Users(self.service.registry, self.service.engine, self.service.schema)
        try:
            return users.caller(job["user_id"])
        except NotFound:
            raise Forbidden("the admin who started this import is no longer active") from None

    def _rejections(self, job_id: int) -> list:
        from engine.records.transfer import Rejection
        r = self.rejections
        with self.service.engine.connect() as conn:
            return [Rejection(row.line, list(row.reasons)) for row in conn.execute(
                sa.select(r.c.line, r.c.reasons).where(r.c.job_id == job_id).order_by(r.c.line))]

    def _finish(self, job_id: int, owner: str, **values) -> bool:
        stamp = now()
        j = self.jobs
        with write_transaction(self.service.engine) as conn:
            done = conn.execute(j.update().where(j.c.id == job_id, j.c.lease_owner == owner)
                                .values(content=None, updated_at=stamp, finished_at=stamp,
                                        lease_owner=None, lease_until=None, **values)).rowcount
            if done:
                conn.execute(self.rejections.delete().where(self.rejections.c.job_id == job_id))
        return bool(done)

    def _release(self, job_id: int, owner: str) -> None:
        j = self.jobs
        with write_transaction(self.service.engine) as conn:
            conn.execute(j.update().where(j.c.id == job_id, j.c.lease_owner == owner)
                         .values(lease_owner=None, lease_until=None, updated_at=now()))

    def _heartbeat(self, job_id: int, owner: str, done: int | None) -> None:
        """Renew the lease of a running job, and show `done` rows (outside the import's own
        transactions: an all-or-nothing run writes its rows in one that ends last)."""
        values = {"lease_until": leases.lease_end(), "updated_at": now()}
        if done is not None:
            values["done_rows"] = done
        with write_transaction(self.service.engine) as conn:
            conn.execute(self.jobs.update().where(
                self.jobs.c.id == job_id, self.jobs.c.lease_owner == owner).values(values))


class _LeaseLost(Exception):
    """Another worker took the job over (this one stalled past its lease)."""


class _Checkpoint:
    """Keeps a job's place in its row, batch by batch (transfer.Checkpoint)."""

    def __init__(self, jobs: ImportJobs, job: dict, owner: str,
                 stopping: Callable[[], bool] | None, resume: bool):
        self.jobs, self.job_id, self.owner = jobs, job["id"], owner
        self.start = job["done_rows"] if resume else 0
        self._stopping = stopping

    def commit(self, conn, position: int, batch: ImportResult) -> None:
        j = self.jobs.jobs
        moved = conn.execute(j.update().where(j.c.id == self.job_id, j.c.lease_owner == self.owner)
                             .values(done_rows=position, created=j.c.created + batch.created,
                                     updated=j.c.updated + batch.updated,
                                     rejected=j.c.rejected + len(batch.rejected),
                                     lease_until=leases.lease_end(), updated_at=now())).rowcount
        if moved != 1:
            raise _LeaseLost()
        if batch.rejected:
            conn.execute(self.jobs.rejections.insert(), [
                {"job_id": self.job_id, "line": r.line, "reasons": r.reasons}
                for r in batch.rejected])

    def stopping(self) -> bool:
        return bool(self._stopping and self._stopping())


class _Progress:
    """The callback `import_rows` reports finished rows to: an all-or-nothing run shows them
    in this process (and, where the database allows a second writer, in the job's row) and
    renews its lease; a resumable run's batches write both with their checkpoint."""

    def __init__(self, jobs: ImportJobs, job_id: int, owner: str, atomic: bool):
        self.jobs, self.job_id, self.owner, self.atomic = jobs, job_id, owner, atomic
        self.done = 0
        self.written_at = time.monotonic()
        # SQLite: the run's transaction holds the only write lock until it ends
        self.write = atomic and not is_sqlite(jobs.service.engine)

    def __call__(self, count: int) -> None:
        self.done += count
        if not self.atomic:
            return
        with _live_lock:
            _live[self.job_id] = self.done
        if self.write and time.monotonic() - self.written_at >= PROGRESS_EVERY:
            self.jobs._heartbeat(self.job_id, self.owner, self.done)
            self.written_at = time.monotonic()


def _admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise Forbidden("the import wizard is for admins")


def _editable(job: dict, mapped: bool = False) -> None:
    if job["status"] not in ("uploaded", "mapped"):
        raise Conflict("this import has already run")
    if mapped and job["status"] != "mapped":
        raise Conflict("map the columns first")


def _with_state(job: dict) -> dict:
    """Add `state`: the status, or "interrupted" for a run whose worker stopped renewing its
    lease (it resumes when a worker next claims it)."""
    state = job["status"]
    lease = job.get("lease_until")
    if state == "running" and (lease is None or lease < now()) and job["id"] not in _live:
        state = "interrupted"
    job["state"] = state
    return job
