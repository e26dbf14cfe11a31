"""HTML to PDF with xhtml2pdf, which installs from PyPI alone (reportlab underneath, no system
libraries, no browser) and prints Chinese with the PDF standard CJK font `STSong-Light`:
a font every PDF reader supplies, so nothing is embedded and the file stays small.

The renderer reads only images in the layers' documents/ folders and fetches nothing over
the network (xhtml2pdf's server resource policy, with remote fetching off).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from xhtml2pdf import pisa
from xhtml2pdf.config.resources import ResourceAccessPolicy
from xhtml2pdf.default import DEFAULT_CSS

from engine.documents.sandbox import BUILTIN
from engine.registry.model import PrintDocument

CJK_FONT = "STSong-Light"
log = logging.getLogger(__name__)

pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
for _bold in (0, 1):  # no bold or italic CJK standard font: those print in the same one
    for _italic in (0, 1):
        addMapping(CJK_FONT, _bold, _italic, CJK_FONT)


class PdfFailed(Exception):
    """The HTML could not be laid out as a PDF."""


def page_css(document: PrintDocument, html: str) -> str:
    """The defaults under a template's own CSS: its paper (unless the template sets its own
    `@page`, as base.html does) and a font that has Chinese."""
    page = "" if "@page" in html else \
        f"@page {{ size: {document.paper} {document.orientation}; margin: 15mm; }}\n"
    return page + f"html, body {{ font-family: {CJK_FONT}; font-size: 10pt; }}\n"


def html_to_pdf(html: str, document: PrintDocument, folders) -> bytes:
    """Return the PDF of `html`, laid out on the document's paper."""
    roots = [Path(f) for f in folders] + [BUILTIN]
    policy = ResourceAccessPolicy.server(base_dir=roots[0], extra_roots=tuple(roots[1:]),
                                         allow_remote=False)
    out = io.BytesIO()
    try:
        result = pisa.CreatePDF(html, dest=out, encoding="utf-8", path=str(roots[0] / "_.html"),
                                default_css=DEFAULT_CSS + page_css(document, html),
                                resource_policy=policy)
    except Exception as exc:  # a layout the library cannot draw is the template's problem
        log.warning("PDF of document %s failed: %s", document.name, exc, exc_info=True)
        raise PdfFailed(str(exc) or type(exc).__name__) from exc
    if result.err:
        raise PdfFailed(f"{result.err} error(s) while laying out the page")
    return out.getvalue()
