"""Files of the import wizard: what an upload is (judged by its bytes, not its name), its table,
and the file of rejected rows handed back to be fixed and imported again.

Reading goes through `transfer.read_table`, the reader of `crm import`, so the wizard sees the
same header, the same line numbers and the same encodings (UTF-8, GB18030/GBK, XLSX).
"""

from __future__ import annotations

import codecs
import csv
import io
import tempfile
import zipfile
from pathlib import Path

from engine.errors import BadRequest
from engine.records.transfer import ImportRefused, TableTooLarge, check_xlsx_size, read_table

# The column the rejected-rows file adds; the wizard ignores it when that file comes back.
# Not an identifier (space, capital), so no field is ever named so.
REASON_COLUMN = "Import error"
FORMATS = ("csv", "xlsx")
_SNIFF_BYTES = 64 * 1024
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls, .doc: Office files before 2007
_TEXT_CONTROLS = frozenset("\t\n\r\f")


class UploadRefused(BadRequest):
    """A file the wizard cannot take; `key` and `params` word the reason in the UI's language."""

    def __init__(self, key: str, status: int = 400, **params):
        detail = ", ".join(f"{k}={v}" for k, v in params.items())
        super().__init__(f"import refused: {key}" + (f" ({detail})" if detail else ""),
                         key=key, params=params)
        self.status = status


def sniff(content: bytes) -> str:
    """Return "csv" or "xlsx" for an upload's bytes; refuse anything else."""
    if not content.strip():
        raise UploadRefused("empty")
    if content.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile:
            raise UploadRefused("not_table", 415) from None
        if "xl/workbook.xml" in names:
            try:
                check_xlsx_size(io.BytesIO(content))
            except TableTooLarge as exc:
                raise UploadRefused("table_too_large", 413, detail=str(exc)) from None
            return "xlsx"
        raise UploadRefused("not_table", 415)  # a .docx, .pptx or plain zip archive
    if content.startswith(_OLE_MAGIC):
        raise UploadRefused("old_xls", 415)
    sample = content[:_SNIFF_BYTES]
    if b"\x00" in sample:
        raise UploadRefused("not_table", 415)  # images, PDFs, UTF-16 text
    text = _decode_sample(sample, final=len(content) <= _SNIFF_BYTES)
    if text is None:
        raise UploadRefused("encoding", 415)
    if any(ch < " " and ch not in _TEXT_CONTROLS for ch in text):
        raise UploadRefused("not_table", 415)
    return "csv"


def _decode_sample(sample: bytes, final: bool) -> str | None:
    # a sample cut mid-character must not count against the file: decode incrementally
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return codecs.getincrementaldecoder(encoding)().decode(sample, final=final)
        except UnicodeDecodeError:
            continue
    return None


def read_upload(content: bytes, fmt: str) -> tuple[list[str], list[tuple[int, list]]]:
    """Return the header and (line number, cells) rows of an upload, as `crm import` reads."""
    with tempfile.TemporaryDirectory(prefix="crm-import-") as folder:
        path = Path(folder) / f"upload.{fmt}"
        path.write_bytes(content)
        try:
            header, rows = read_table(path)
        except TableTooLarge as exc:
            raise UploadRefused("table_too_large", 413, detail=str(exc)) from None
        except ImportRefused as exc:
            raise UploadRefused("unreadable", detail=str(exc)) from None
    if not any(h for h in header):
        raise UploadRefused("no_header")
    return header, rows


def cell_display(value) -> str:
    """A cell as text for the wizard's pages (XLSX cells may be numbers or dates)."""
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        text = value.isoformat()
        return text[:-9] if text.endswith("T00:00:00") else text
    return str(value)


def rejected_file(fmt: str, header: list[str], rows: list[tuple[list, str]]) -> bytes:
    """The rejected rows in the upload's format: its columns, cells as they came, and a reason.

    Cells are written back verbatim, not neutralised as an export's are: they are the admin's
    own input, and a quote added before "+86..." or "-5" would break the import after fixing.
    A file that already has the reason column (a rejected file imported again) keeps one,
    with the new reasons."""
    header = list(header)
    if REASON_COLUMN in header:
        at = header.index(REASON_COLUMN)
    else:
        at = len(header)
        header.append(REASON_COLUMN)
    table = [header]
    for cells, reason in rows:
        cells = list(cells) + [""] * (len(header) - len(cells))
        cells[at] = reason
        table.append(cells)
    return _xlsx(table) if fmt == "xlsx" else _csv(table)


def _csv(table: list[list]) -> bytes:
    out = io.StringIO()
    out.write("\ufeff")  # so Excel opens Chinese text correctly, as exports do
    writer = csv.writer(out, lineterminator="\r\n")
    for row in table:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue().encode("utf-8")


def _xlsx(table: list[list]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell.cell import TYPE_STRING

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "rejected"
    for r, row in enumerate(table, start=1):
        for c, value in enumerate(row, start=1):
            if value is None or value == "":
                continue
            cell = sheet.cell(r, c)
            cell.value = value
            if isinstance(value, str):
                cell.data_type = TYPE_STRING  # text stays text, never a formula
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
