"""The data dictionary, rendered: admin pages (`/admin/dictionary...`) and static files
(`crm docs -o DIR`) from the same templates and the same model (engine/dictionary).

The templates extend a layout named by the caller: `dictionary_web.html` (the admin console's
frame) or `dictionary_static.html` (a standalone page that opens from file://). Links are made
by a `link(kind, name)` function for the same reason. Diagrams are Mermaid sources that the
vendored Mermaid bundle draws in the browser, with no network (docs/dictionary.md says why).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from flask import Blueprint, Flask, current_app, g, url_for

from engine.dictionary import Dictionary, build_dictionary
from engine.dictionary import diagrams
from engine.errors import NotFound, RecordError
from engine.registry.model import ACTIONS, Registry
from web.admin import require_admin
from web.i18n import t
from web.ui import page, record_error

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
# copied into a `crm docs` folder, so that its pages need nothing from outside it
ASSETS = ("ui.css", "dictionary.css", "dictionary.js", "vendor/mermaid.min.js",
          "vendor/mermaid.LICENSE.txt")
# Mermaid writes <style> elements and style attributes into the SVG it draws; scripts stay
# limited to this site's own files
CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'"

dictionary_pages = Blueprint("dictionary", __name__, url_prefix="/admin/dictionary")
dictionary_pages.register_error_handler(RecordError, record_error)


def register_dictionary(app: Flask) -> None:
    app.register_blueprint(dictionary_pages)


@dictionary_pages.before_request
def admins_only():
    """The admin console's gate: sign in first, then the admin role, else 403."""
    return require_admin()


@dictionary_pages.after_request
def headers(response):
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    return response


def _dictionary() -> Dictionary:
    """The dictionary of the registry the site serves, built on first use and rebuilt when a
    reload swaps the registry."""
    from web.common import site
    registry = site().registry
    cached = current_app.extensions.get("crm_dictionary")
    if cached is None or cached.registry is not registry:
        cached = current_app.extensions["crm_dictionary"] = build_dictionary(registry)
    return cached


# ---------------------------------------------------------------- what the templates get

class View:
    """The helpers every dictionary template uses, in one language."""

    def __init__(self, dictionary: Dictionary, locale: str, link):
        self.d = dictionary
        self.registry: Registry = dictionary.registry
        self.locale = locale
        self.link = link
        self.words = {"requires": t("dict_requires", locale), "user": t("dict_user", locale)}
        self.actions = ACTIONS

    def label(self, label) -> str:
        return label.get(self.locale) if label is not None else ""

    def role_label(self, name: str) -> str:
        role = self.registry.roles.get(name)
        return role.label.get(self.locale) if role is not None else name

    def role_labels(self, names) -> str:
        return ", ".join(self.role_label(n) for n in names)

    def entity_label(self, name: str) -> str:
        if name == "user":
            return self.words["user"]
        entity = self.registry.entities.get(name)
        return entity.label.get(self.locale) if entity is not None else name

    def state_label(self, workflow, name: str) -> str:
        return workflow.states[name].label.get(self.locale)

    def state_labels(self, workflow, names) -> str:
        return ", ".join(self.state_label(workflow, n) for n in names)

    def workflow_diagram(self, workflow) -> str:
        return diagrams.workflow_diagram(self.registry, workflow, self.locale, self.words)

    def neighbourhood_diagram(self, entity: str) -> str:
        return diagrams.neighbourhood_diagram(self.d, entity, self.locale, self.words)

    def module_diagram(self, module: str) -> str:
        return diagrams.module_diagram(self.d, module, self.locale, self.words)

    def model_diagram(self) -> str:
        return diagrams.model_diagram(self.d, self.locale, self.words)

    def rule_numbers(self):
        """Number every sharing rule of the permission matrix once, for its footnotes:
        [(number, role, entity, action, grant)]."""
        found = []
        for group in self.d.modules:
            for entity in group.entities:
                for role in self.d.roles:
                    grant = self.d.grant(role.name, entity)
                    for action in ("read", "update", "delete"):
                        if grant.actions[action] == "rule" and not grant.via_parent:
                            found.append((len(found) + 1, role.name, entity, action, grant))
        return found

    @staticmethod
    def rule_refs(numbered) -> dict:
        """The footnote numbers of each cell: {(role, entity): {action: [numbers]}}."""
        refs: dict = {}
        for number, role, entity, action, _ in numbered:
            refs.setdefault((role, entity), {}).setdefault(action, []).append(number)
        return refs

    def sharing_texts(self, grant, action: str) -> list[str]:
        """Each sharing rule of `action` in words, and the user's own records if they count."""
        texts = []
        for rule in grant.rules.get(action, ()):
            parts = []
            if rule.through is not None:
                match = ", ".join(f"{rule.through}.{mine} = {theirs}"
                                  for mine, theirs in rule.match.items())
                parts.append(t("dict_share_through", self.locale,
                               entity=self.entity_label(rule.through), user=rule.user,
                               match=match))
            if rule.where is not None:
                parts.append(t("dict_share_where", self.locale, where=rule.where.source))
            texts.append(t("dict_and", self.locale).join(parts))
        if action in grant.own_too:
            texts.append(t("dict_share_own", self.locale))
        return texts


def render(env, template: str, dictionary: Dictionary, locale: str, link, layout: str,
           **context) -> str:
    view = View(dictionary, locale, link)
    return env.get_template(template).render(
        layout=layout, locale=locale, v=view, d=dictionary, t=t, **context)


# ---------------------------------------------------------------- admin pages

def _web_link(kind: str, name: str | None = None) -> str:
    if kind == "entity":
        return url_for("dictionary.entity", name=name)
    if kind == "asset":
        return url_for("static", filename=name)
    return url_for(f"dictionary.{kind}")


def _page(template: str, title: str, **context):
    loc = g.caller.locale
    view = View(_dictionary(), loc, _web_link)
    return page(template, layout="dictionary_web.html", v=view, d=view.d, title=title,
                **context)


@dictionary_pages.get("")
@dictionary_pages.get("/")
def index():
    return _page("dictionary_index.html", t("dict_title", g.caller.locale))


@dictionary_pages.get("/references")
def references():
    return _page("dictionary_references.html", t("dict_references", g.caller.locale))


@dictionary_pages.get("/permissions")
def permissions():
    return _page("dictionary_permissions.html", t("dict_permissions", g.caller.locale))


@dictionary_pages.get("/entities/<name>")
def entity(name):
    found = _dictionary().pages.get(name)
    if found is None:
        raise NotFound(t("error_404", g.caller.locale))
    return _page("dictionary_entity.html", found.entity.label.get(g.caller.locale), doc=found)


# ---------------------------------------------------------------- crm docs

def _static_link(kind: str, name: str | None = None) -> str:
    if kind == "entity":
        return f"entity-{name}.html"
    if kind == "asset":
        return f"assets/{name}"
    return f"{kind}.html"


class DocsFolderTaken(Exception):
    """The output folder holds files that `crm docs` did not write."""


MARKER = ".crm-docs"  # names a folder as written by `crm docs`, so a rerun may replace it


def write_docs(registry: Registry, folder: Path, locale: str) -> list[Path]:
    """Write the dictionary of `registry` as static HTML into `folder`, with every script
    and style sheet it needs; return the files written. Pages of an earlier run are replaced
    (an entity removed since loses its page); a folder with other content is refused."""
    import jinja2

    if folder.exists() and (not folder.is_dir() or (any(folder.iterdir())
                                                    and not (folder / MARKER).exists())):
        raise DocsFolderTaken(f"{folder} exists and holds other files; choose a new or empty "
                              f"folder, or one an earlier `crm docs` wrote")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
    dictionary = build_dictionary(registry)
    app = registry.app
    site_label = app.label.get(locale) if app is not None else t("app", locale)
    pages = {"index.html": ("dictionary_index.html", t("dict_title", locale), {}),
             "references.html": ("dictionary_references.html", t("dict_references", locale), {}),
             "permissions.html": ("dictionary_permissions.html",
                                  t("dict_permissions", locale), {})}
    for name, doc in dictionary.pages.items():
        pages[f"entity-{name}.html"] = ("dictionary_entity.html",
                                        doc.entity.label.get(locale), {"doc": doc})
    # every page is rendered before the first is written: a failure leaves the folder as it was
    html = {filename: render(env, template, dictionary, locale, _static_link,
                             "dictionary_static.html", title=title, site_label=site_label,
                             **context)
            for filename, (template, title, context) in pages.items()}
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("entity-*.html"):
        if stale.name not in html:
            stale.unlink()
    (folder / MARKER).write_text("written by crm docs; rerunning it replaces this folder's "
                                 "pages\n", encoding="utf-8")
    written = []
    for filename, text in html.items():
        path = folder / filename
        path.write_text(text, encoding="utf-8")
        written.append(path)
    for asset in ASSETS:
        target = folder / "assets" / asset
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(STATIC / asset, target)
        written.append(target)
    return written
