"""Printing a record's document: who may, the template's context, HTML, PDF and the audit.

The record is read through the record service, so a record the caller may not read is not
found and a field hidden from them is not in the template's context at all. Every printed
document is audited on its record as `print:<document>` (who, what, when).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import traceback
from dataclasses import dataclass
from pathlib import Path

from jinja2 import TemplateError, TemplateSyntaxError

from engine.documents.pdf import PdfFailed, html_to_pdf
from engine.documents.sandbox import BUILTIN, document_environment, find_asset, render_bounded
from engine.documents.views import RecordViews, View, entity_of, show
from engine.errors import BadRequest, Forbidden, NotFound, RecordError
from engine.records.access import Caller
from engine.registry.labels import words
from engine.registry.model import PrintDocument, Registry

LOCALES = ("en", "zh")
FORMATS = ("html", "pdf")
log = logging.getLogger(__name__)


class DocumentFailed(RecordError):
    """The template or the PDF layout failed while printing: the consultant's mistake, told
    to the user with the template file and line instead of a server error."""

    status, code = 422, "document_failed"


@dataclass(frozen=True)
class Printed:
    document: PrintDocument
    content: str | bytes  # HTML text or PDF bytes
    format: str
    filename: str  # for a download: "<label> <record title>.<format>"


class Documents:
    """The printable documents of one registry, with their compiled templates."""

    def __init__(self, registry: Registry, service):
        self.registry, self.service = registry, service
        self.folders = tuple(Path(f) for f in registry.document_folders)
        self.environment = document_environment(self.folders)

    def may_print(self, caller: Caller, document: PrintDocument) -> bool:
        """Whether the caller's roles allow the document (reading the record is apart)."""
        return document.roles is None or caller.is_admin or \
            any(role in document.roles for role in caller.roles)

    def for_entity(self, caller: Caller, entity_name: str) -> list[PrintDocument]:
        """The documents of an entity the caller may print, in name order."""
        return [d for d in sorted(self.registry.documents.values(), key=lambda d: d.name)
                if d.entity == entity_name and self.may_print(caller, d)]

    def print(self, caller: Caller, entity_name: str, record_id, name: str,
              fmt: str = "html", locale: str | None = None, asset_url=None) -> Printed:
        """Render one document of one record; `asset_url(name)` gives an image's address in
        HTML (a PDF reads the file itself)."""
        if fmt not in FORMATS:
            raise BadRequest("format: must be html or pdf", {"format": ["must be html or pdf"]})
        if locale is not None and locale not in LOCALES:
            raise BadRequest("locale: must be en or zh", {"locale": ["must be en or zh"]})
        document = self.registry.documents.get(name)
        if document is None or document.entity != entity_name:
            raise NotFound(f"no document '{name}' for {entity_name}")
        record = self.service.get(caller, entity_name, record_id)
        if not self.may_print(caller, document):
            raise Forbidden(f"your roles may not print the document '{name}'")
        locale = document.locale or locale or caller.locale
        if locale not in LOCALES:
            locale = "en"
        entity = self.registry.entities[entity_name]
        view = RecordViews(self.registry, self.service, caller, locale).build(entity, record)
        html = self._render(document, self._context(caller, document, view, locale, fmt,
                                                    asset_url))
        content: str | bytes = html
        if fmt == "pdf":
            try:
                content = html_to_pdf(html, document, self.folders)
            except PdfFailed as exc:
                raise DocumentFailed(f"the document '{name}' could not be laid out as a PDF "
                                     f"({exc})") from None
        self.service.note(caller, entity_name, record["id"], f"print:{name}")
        filename = _safe_name(f"{document.label.get(locale)} {view}") + f".{fmt}"
        return Printed(document, content, fmt, filename)

    def _context(self, caller: Caller, document: PrintDocument, view: View, locale: str,
                 fmt: str, asset_url) -> dict:
        registry = self.registry
        app = registry.app
        company = {key: label.get(locale) for key, label in (app.company if app else {}).items()}
        company.setdefault("name", app.label.get(locale) if app else "")
        folders = self.folders

        def label(of, field=None) -> str:
            entity = entity_of(of) if not isinstance(of, str) else registry.entities.get(of)
            if entity is None:
                return ""
            if field is None:
                return entity.label.get(locale)
            fld = entity.fields.get(field)
            return fld.label.get(locale) if fld is not None else words(str(field))

        def asset(path: str) -> str:
            found = find_asset(folders, str(path))
            if found is None:
                raise ValueError(f"asset: no image '{path}' in a documents/ folder (PNG, JPEG "
                                 "or GIF)")
            if fmt == "pdf" or asset_url is None:
                return str(found.resolve())
            return asset_url(str(path))

        now = dt.datetime.now(dt.timezone.utc)
        return {
            "record": view, "locale": locale, "today": now.date(), "now": now,
            "document": View(None, {"name": document.name, "label": document.label.get(locale),
                                    "paper": document.paper,
                                    "orientation": document.orientation,
                                    "locale": locale, "format": fmt},
                             document.label.get(locale)),
            "company": View(None, company, company["name"]),
            "user": View(None, {"id": caller.user_id, "username": caller.username,
                                "name": caller.display_name or caller.username,
                                "email": caller.email},
                         caller.display_name or caller.username),
            "label": label, "asset": asset,
            "show": lambda of, field: show(registry, of, field, locale),
        }

    def _render(self, document: PrintDocument, context: dict) -> str:
        try:
            return render_bounded(self.environment.get_template(document.template),
                                  context)
        except Exception as exc:  # a template's mistake: tell where, never a server error
            where = self._where(exc, document)
            message = exc.message if isinstance(exc, TemplateError) and exc.message else str(exc)
            log.info("document %s failed at %s: %s", document.name, where, message)
            raise DocumentFailed(f"the document '{document.name}' could not be printed: "
                                 f"{where}: {message}") from None

    def _where(self, exc: Exception, document: PrintDocument) -> str:
        """The template file and line an error happened at, as a consultant finds it."""
        if isinstance(exc, TemplateSyntaxError) and exc.filename:
            return f"{self._display(exc.filename)}:{exc.lineno}"
        roots = [f.resolve() for f in self.folders] + [BUILTIN]
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if any(Path(frame.filename).resolve().is_relative_to(root) for root in roots):
                return f"{self._display(frame.filename)}:{frame.lineno}"
        return document.template

    def _display(self, filename: str) -> str:
        path = Path(filename).resolve()
        for folder in self.folders:
            try:
                # the layer's folder name tells which layer's file it is (site, a pack)
                return f"{folder.resolve().parent.name}/documents/" \
                    f"{path.relative_to(folder.resolve()).as_posix()}"
            except ValueError:
                continue
        return path.name


def _safe_name(text: str) -> str:
    """A file name without path separators or control characters."""
    cleaned = re.sub(r'[\x00-\x1f/\\:*?"<>|]+', " ", text).strip()
    return re.sub(r"\s+", " ", cleaned)[:120] or "document"

