"""Printable documents: Jinja2 templates of a layer rendered to HTML and PDF for one record
(docs/language.md#17-printable-documents).

`render.Documents` prints; `sandbox` is the template environment, which the checker uses too
(so loading a configuration does not import the PDF library).
"""
