"""CSV and XLSX in and out, through the record service (CLI.md "Files in and out").

Export writes what the exporting user may read, with spreadsheet formulas neutralised;
import maps headers (identifiers or labels in either language) to fields, creates or updates
each row through the record service and reports every rejected row with its line number.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterator, Protocol

from engine.errors import RecordError
from engine.records.bulk import create_many
from engine.records.access import Caller
from engine.records.listing import ListQuery
from engine.records.values import to_json
from engine.registry.model import Entity

EXPORT_SYSTEM = ("version", "owner", "created_at", "updated_at")
IGNORED_ON_IMPORT = ("created_at", "updated_at", "created_by", "updated_by")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BATCH = 1000  # rows validated and written together


def neutralise(value: str) -> str:
    """Prefix text that a spreadsheet would run as a formula with a quote."""
    stripped = value.lstrip(" ")
    if stripped[:1] in _FORMULA_START or value[:1] in ("\t", "\r"):
        return "'" + value
    return value


def export_columns(service, caller: Caller, entity: Entity) -> list[str]:
    hidden = service.access(caller, entity).hidden
    return ["id", *EXPORT_SYSTEM] + [n for n, f in entity.fields.items()
                                     if f.kind.stored and n not in hidden]


def export_rows(service, caller: Caller, entity_name: str,
                query: ListQuery | None = None) -> Iterator[list]:
    """Yield the header, then one row of typed cells per readable record (keyset pages).

    `query` narrows and orders the records as a list page does: its filters, text search and
    sort apply (no sort: the entity's list order); its limit, cursor and fields do not, as
    every page is read. Without it: every readable record, by id."""
    entity = service.entity(entity_name)
    columns = export_columns(service, caller, entity)
    yield columns
    base = query if query is not None else ListQuery(sort="id")
    cursor = None
    while True:
        page_query = dataclasses.replace(base, limit=500, cursor=cursor, fields=None,
                                         exact_count=False)
        page = service.list(caller, entity_name, page_query)
        for record in page.data:
            row = []
            for name in columns:
                value = record.get(name)
                fld = entity.fields.get(name)
                if isinstance(value, Decimal):
                    row.append(value)
                elif isinstance(value, list):
                    row.append(",".join(str(v) for v in value))
                elif fld is not None and fld.type == "file" and isinstance(value, dict):
                    row.append(value.get("name"))  # a file is exported as its name
                elif isinstance(value, dict):
                    import json
                    row.append(json.dumps(value, ensure_ascii=False))
                else:
                    row.append(to_json(fld, value))
            yield row
        cursor = page.next_cursor
        if cursor is None:
            return


def labelled_header(entity: Entity, header: list[str], locale: str) -> list[str]:
    """Field labels in the person's language; the system columns (id, version, owner,
    created_at, updated_at) keep their identifiers, so `crm import` takes the file back."""
    return [entity.fields[n].label.get(locale) if n in entity.fields else n for n in header]


def cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    return neutralise(str(value))


def write_csv(rows: Iterator[list], out) -> int:
    """Write UTF-8 CSV with a byte-order mark; return the number of records."""
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    count = -1
    for row in rows:
        writer.writerow([cell_text(v) for v in row])
        count += 1
    return count


def write_xlsx(rows: Iterator[list], path: Path, title: str) -> int:
    from openpyxl import Workbook
    from openpyxl.cell.cell import TYPE_STRING

    workbook = Workbook(write_only=False)
    sheet = workbook.active
    sheet.title = title[:31]
    count = -1
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row, start=1):
            if isinstance(value, Decimal):
                cell = sheet.cell(r, c, float(value))
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                cell = sheet.cell(r, c, value)
            elif value is None:
                continue
            else:
                cell = sheet.cell(r, c)
                cell.value = cell_text(value)
                cell.data_type = TYPE_STRING  # a text value is never a formula
        count += 1
    workbook.save(path)
    return count


# ---------------------------------------------------------------------------------- import

@dataclass
class Rejection:
    line: int
    reasons: list[str]


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    rolled_back: bool = False


class ImportRefused(Exception):
    """The file as a whole cannot be imported (a column matches no field, unreadable file)."""


class TableTooLarge(ImportRefused):
    """The file holds more rows, columns or data than an import takes."""


# what one file may hold, checked before (and while) it is parsed: a small XLSX can unpack to
# millions of rows (a 1.3 MB file held 1.5 M), so the zip's declared sizes, the sheet's
# declared dimension and the rows actually read are all bounded
MAX_ROWS = 1_000_000
MAX_COLUMNS = 500
MAX_UNPACKED_BYTES = 300 * 1024 * 1024


def read_table(path: Path, encoding: str | None = None,
               sheet: str | None = None) -> tuple[list[str], list[tuple[int, list]]]:
    """Return the header and (line number, cells) rows of a CSV or XLSX file."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _read_xlsx(path, sheet)
    raw = path.read_bytes()
    text = _decode(raw, encoding)
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = []
    header = None
    start = 1
    for cells in reader:
        _check_dimension(reader.line_num, len(cells))
        if header is None:
            header = cells
        elif any(c.strip() for c in cells):
            rows.append((start, cells))
        start = reader.line_num + 1
    if header is None:
        raise ImportRefused("the file is empty")
    return [h.strip().lstrip("\ufeff") for h in header], rows


def _decode(raw: bytes, encoding: str | None) -> str:
    if encoding:
        try:
            return raw.decode(encoding)
        except (LookupError, UnicodeDecodeError) as exc:
            raise ImportRefused(f"the file is not in {encoding}: {exc}") from None
    for candidate in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(candidate)
        except UnicodeDecodeError:
            continue
    raise ImportRefused("the file is neither UTF-8 nor GB18030/GBK; give --encoding")


def check_xlsx_size(path_or_file) -> None:
    """Refuse a workbook whose parts unpack to more than MAX_UNPACKED_BYTES (read from the
    zip's directory: nothing is unpacked to know it)."""
    import zipfile
    try:
        with zipfile.ZipFile(path_or_file) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise ImportRefused("the file is not a readable XLSX workbook (not a zip)") from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise TableTooLarge(f"the workbook unpacks to {unpacked // 2 ** 20} MB; at most "
                            f"{MAX_UNPACKED_BYTES // 2 ** 20} MB can be imported")


def _read_xlsx(path: Path, sheet: str | None):
    from openpyxl import load_workbook
    check_xlsx_size(path)
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise ImportRefused(f"the file is not a readable XLSX workbook ({exc})") from None
    if sheet is not None and sheet not in workbook.sheetnames:
        raise ImportRefused(f"no sheet '{sheet}' (sheets: {', '.join(workbook.sheetnames)})")
    ws = workbook[sheet] if sheet else workbook.worksheets[0]
    _check_dimension(ws.max_row, ws.max_column)  # the sheet's own <dimension>, if it has one
    # ...which is only a claim: read every row there is (a too small one would drop rows
    # silently), counting them as they come
    ws.reset_dimensions()
    header, rows = None, []
    for number, cells in enumerate(ws.iter_rows(values_only=True), start=1):
        _check_dimension(number, len(cells))  # a missing or false <dimension> is no way round
        cells = ["" if c is None else c for c in cells]
        if header is None:
            header = [str(c).strip() for c in cells]
        elif any(str(c).strip() for c in cells):
            rows.append((number, list(cells)))
    if header is None:
        raise ImportRefused("the sheet is empty")
    return header, rows


def _check_dimension(rows: int | None, columns: int | None) -> None:
    if rows is not None and rows > MAX_ROWS + 1:  # + the header
        raise TableTooLarge(f"the sheet has more than {MAX_ROWS:,} rows; import at most "
                            f"{MAX_ROWS:,} rows a file")
    if columns is not None and columns > MAX_COLUMNS:
        raise TableTooLarge(f"the sheet has {columns:,} columns; at most {MAX_COLUMNS} can be "
                            "imported")


def map_columns(entity: Entity, header: list[str]) -> list[str | None]:
    """Map each header to a field identifier; refuse the file on a column matching nothing."""
    names = {}
    for name, fld in entity.fields.items():
        names[name] = name
        for text in fld.label.texts.values():
            names.setdefault(text.strip().lower(), name)
        names.setdefault(fld.label.get("en").lower(), name)
    mapped = []
    unknown = []
    for column in header:
        key = column.strip()
        if key in ("id", "version", "owner") or key in IGNORED_ON_IMPORT:
            mapped.append(key)
        elif key in names or key.lower() in names:
            mapped.append(names.get(key) or names[key.lower()])
        elif key == "":
            mapped.append(None)
        else:
            unknown.append(column)
    if unknown:
        raise ImportRefused(f"column '{unknown[0]}' matches no field of {entity.name}"
                            + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))
    return mapped


class Checkpoint(Protocol):
    """Where a resumable import keeps its place (engine/records/importjobs.py).

    `start` rows of the import's work (creates first, then updates, each in file order) are
    already done. `commit` runs inside each batch's transaction, after its rows were
    written, with the position reached and what the batch did: what it writes commits with
    the rows or not at all, so a resumed import neither repeats nor skips a row. It raises to
    undo the batch (the import is not this process's any more). `stopping()` true ends the
    import after the batch that just committed."""

    start: int

    def commit(self, conn, position: int, batch: "ImportResult") -> None: ...

    def stopping(self) -> bool: ...


class ImportStopped(Exception):
    """The import stopped between two batches because its process is shutting down."""

    def __init__(self, position: int):
        super().__init__(f"stopped after {position} rows")
        self.position = position


def import_rows(service, caller: Caller, entity_name: str, header: list[str],
                rows: list[tuple[int, list]], all_or_nothing: bool = False,
                progress: Callable[[int], None] | None = None,
                dry_run: bool = False, checkpoint: Checkpoint | None = None) -> ImportResult:
    """Create or update one record per row through the record service, BATCH rows to a
    transaction (all in one with `all_or_nothing`); the result counts this call's rows.

    `dry_run` checks every row exactly as an all-or-nothing import would, then rolls the one
    transaction back: the counts say what would have been created and updated."""
    from engine.storage.database import write_transaction

    entity = service.entity(entity_name)
    columns = map_columns(entity, header)
    workflow = service.registry.workflow_by_entity.get(entity.name)
    skip = set(IGNORED_ON_IMPORT)
    for name, fld in entity.fields.items():
        if not fld.kind.writable or fld.compute is not None or \
                (workflow is not None and name == workflow.field):
            skip.add(name)  # exported for reading; never written from a file
    # files are never imported: an empty cell or (on update) the name an export wrote leaves
    # the file as it is; any other text is refused for the row by the file field itself
    file_columns = {n for n, f in entity.fields.items() if f.type == "file"}
    result = ImportResult()
    creates: list[tuple[int, dict]] = []
    updates: list[tuple[int, dict]] = []
    for line, cells in rows:
        values = {}
        for column, cell in zip(columns, cells):
            if column is None or column in skip:
                continue
            if column in file_columns and (cell is None or str(cell).strip() == ""):
                continue
            values[column] = None if (isinstance(cell, str) and cell.strip() == "") else cell
        (updates if values.get("id") not in (None, "") else creates).append((line, values))

    def update_one(conn, values: dict) -> None:
        values = dict(values)
        record_id, version = values.pop("id"), values.pop("version", None)
        current = service.get(caller, entity.name, record_id, conn=conn)
        for name in file_columns & set(values):
            stored = current.get(name)
            if isinstance(stored, dict) and str(values[name]).strip() == stored.get("name"):
                del values[name]  # the name an export wrote: the file stays as it is
        service.update(caller, entity.name, current["id"], values,
                       version if version is not None else current["version"], conn=conn)

    def reasons(exc: RecordError) -> list[str]:
        if exc.fields:
            return [f"{k}: {'; '.join(v)}" for k, v in exc.fields.items()]
        return [exc.message]

    def create_batch(conn, batch: list[tuple[int, dict]], done: ImportResult) -> None:
        for values in (v for _, v in batch):
            values.pop("id", None)
            values.pop("version", None)
        outcomes = create_many(service, caller, entity.name, [v for _, v in batch], conn)
        for (line, _), outcome in zip(batch, outcomes):
            if outcome.error is not None:
                done.rejected.append(Rejection(line, reasons(outcome.error)))
            else:
                done.created += 1

    def update_batch(conn, batch: list[tuple[int, dict]], done: ImportResult) -> None:
        for line, values in batch:  # each row in a savepoint: a refused one undoes only itself
            try:
                with conn.begin_nested():
                    update_one(conn, values)
                done.updated += 1
            except RecordError as exc:
                done.rejected.append(Rejection(line, reasons(exc)))

    start = checkpoint.start if checkpoint is not None else 0
    work = [(create_batch, line, values) for line, values in creates] + \
        [(update_batch, line, values) for line, values in updates]
    batches = []  # (kind, rows): at most BATCH rows of one kind each, from `start` on
    for kind, line, values in work[start:]:
        if not batches or batches[-1][0] is not kind or len(batches[-1][1]) >= BATCH:
            batches.append((kind, []))
        batches[-1][1].append((line, values))

    def add(done: ImportResult) -> None:
        result.created += done.created
        result.updated += done.updated
        result.rejected.extend(done.rejected)

    def run(conn, atomic: bool) -> None:
        position = start
        for kind, batch in batches:
            done = ImportResult()
            if atomic:
                kind(conn, batch, done)
            else:
                with write_transaction(service.engine) as own:
                    kind(own, batch, done)
                    if checkpoint is not None:
                        checkpoint.commit(own, position + len(batch), done)
            position += len(batch)
            add(done)
            if progress:
                progress(len(batch))
            if not atomic and checkpoint is not None and position < len(work) and \
                    checkpoint.stopping():
                raise ImportStopped(position)
        if atomic and checkpoint is not None and not (result.rejected or dry_run):
            checkpoint.commit(conn, position, result)

    if all_or_nothing or dry_run:
        try:
            with write_transaction(service.engine) as conn:
                run(conn, atomic=True)
                if result.rejected or dry_run:
                    raise _Rollback()
        except _Rollback:
            if not dry_run:
                result.created = result.updated = 0
            result.rolled_back = True
    else:
        run(None, atomic=False)
    result.rejected.sort(key=lambda r: r.line)
    return result


class _Rollback(Exception):
    pass
