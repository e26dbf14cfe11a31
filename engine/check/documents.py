"""Printable documents (`documents/*.yaml`) and their Jinja2 templates.

Every template in every layer's documents/ folder is parsed and compiled here, so a syntax
mistake, an unknown filter or a missing included template is reported by `crm validate` at
the template's file and line, not when someone prints. The template of each document is also
walked for the fields it reads (`record.x`, `record.ref.x`, `line.x` in a loop over a lines
field, `label(record, 'x')`) and each is checked against the entity.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import TemplateNotFound, TemplateSyntaxError, nodes

from engine.check.context import CheckRun, Spot
from engine.check.definitions import pick_definitions
from engine.config.layers import Layer, display_path
from engine.documents.sandbox import document_environment, inside, safe_relative
from engine.errors import Problem, did_you_mean
from engine.registry.labels import Label
from engine.registry.model import SYSTEM_FIELDS, Entity, PrintDocument

TEMPLATE_SUFFIXES = (".html", ".htm")
_VIEW_NAMES = {"id", "title"}  # names every record view has besides its fields


def document_folders(layers: list[Layer]) -> tuple[Path, ...]:
    """The layers' documents/ folders, highest layer first (the template lookup order)."""
    return tuple(layer.folder / "documents" for layer in reversed(layers)
                 if (layer.folder / "documents").is_dir())


def compile_documents(run: CheckRun, layers: list[Layer], entities: dict[str, Entity],
                      roles: dict) -> tuple[dict[str, PrintDocument], tuple[str, ...]]:
    """Return the documents by name and the template folders; report every problem."""
    folders = document_folders(layers)
    env = document_environment(folders)
    trees = _check_templates(run, env, folders)
    result = {}
    for name, doc in pick_definitions(run, layers, "document", "document").items():
        document = _compile(run, name, doc, env, entities, roles, trees)
        if document is not None:
            result[name] = document
    return result, tuple(str(f) for f in folders)


def _check_templates(run: CheckRun, env, folders) -> dict[Path, nodes.Template]:
    """Parse and compile every template file; return the parsed ones by resolved path."""
    trees = {}
    for folder in folders:
        leaving = set()
        for path in sorted(p for p in folder.rglob("*") if p.is_symlink()):
            if not inside(path, folder):  # printing would not follow it: say so now
                leaving.add(path)
                shown = f"{display_path(path.parent)}/{path.name}"  # the link, not its target
                run.problems.append(Problem(shown, 1, 1, "symlink-outside",
                                            "a symlink leading out of the documents/ folder "
                                            "is not followed: copy the file in instead"))
        for path in sorted(p for p in folder.rglob("*") if p.suffix in TEMPLATE_SUFFIXES
                           and p.is_file() and p not in leaving):
            shown = display_path(path)
            try:
                source = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                run.problems.append(Problem(shown, 1, 1, "file-encoding",
                                            "template is not UTF-8: save it as UTF-8"))
                continue
            except OSError as exc:
                run.problems.append(Problem(shown, 1, 1, "file-unreadable",
                                            f"template cannot be read: {exc.strerror}"))
                continue
            name = path.relative_to(folder).as_posix()
            try:
                tree = env.parse(source, name, str(path))
                env.compile(tree, name, str(path))
            except TemplateSyntaxError as exc:
                run.problems.append(Problem(shown, exc.lineno or 1, 1, "template-syntax",
                                            _syntax_message(exc, env)))
                continue
            _check_references(run, env, tree, shown)
            for node in tree.find_all(nodes.Getattr):
                if node.attr.startswith("_"):  # the sandbox would refuse it while printing
                    run.problems.append(Problem(shown, node.lineno, 1, "template-unsafe",
                                                f"template: '.{node.attr}' reaches Python "
                                                "internals, which the sandbox refuses"))
            trees[path.resolve()] = tree
    return trees


def _syntax_message(exc: TemplateSyntaxError, env) -> str:
    message = (exc.message or "").rstrip(".")
    for kind, known in (("filter", env.filters), ("test", env.tests)):
        prefix = f"No {kind} named '"
        if message.startswith(prefix):
            unknown = message[len(prefix):].split("'")[0]
            return f"template: no {kind} named '{unknown}'{did_you_mean(unknown, known)}"
    return f"template syntax: {message}"


def _check_references(run: CheckRun, env, tree: nodes.Template, shown: str) -> None:
    """Report `{% extends/include/import %}` of a template no documents/ folder holds."""
    for node in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        if isinstance(node, nodes.Include) and node.ignore_missing:
            continue
        target = node.template
        if not isinstance(target, nodes.Const) or not isinstance(target.value, str):
            continue  # a name computed while rendering
        if not safe_relative(target.value):
            run.problems.append(Problem(shown, node.lineno, 1, "template-path",
                                        f"template '{target.value}' must be a path inside a "
                                        "documents/ folder (no '..', not absolute)"))
            continue
        try:
            env.loader.get_source(env, target.value)
        except TemplateNotFound:
            run.problems.append(Problem(shown, node.lineno, 1, "template-missing",
                                        f"template '{target.value}' is in no documents/ folder"))


def _compile(run: CheckRun, name: str, doc, env, entities, roles, trees):
    data, spot = doc.data, Spot(doc)
    what = f"document '{name}'"
    good = True
    entity = entities.get(data["entity"])
    if entity is None:
        run.error(spot / "entity", "unknown-entity", f"{what}: unknown entity "
                  f"'{data['entity']}'{did_you_mean(data['entity'], entities)}")
        good = False
    elif entity.is_child:
        run.error(spot / "entity", "child-entity", f"{what}: '{entity.name}' is a child "
                  "entity; print its parent's document, whose lines hold it")
        good = False
    for i, role in enumerate(data.get("roles") or ()):
        if role not in roles and role != "admin":
            run.error(spot / "roles" / i, "unknown-role", f"{what}: unknown role '{role}'"
                      f"{did_you_mean(role, roles)}")
            good = False
    template = data["template"]
    path = None
    if not safe_relative(template):
        run.error(spot / "template", "template-path", f"{what}: template '{template}' must be "
                  "a path inside a documents/ folder, such as templates/quotation.html "
                  "(no '..', not absolute)")
        good = False
    else:
        try:
            _, filename, _ = env.loader.get_source(env, template)
            path = Path(filename).resolve()
        except TemplateNotFound:
            run.error(spot / "template", "template-missing", f"{what}: template '{template}' "
                      "is in no documents/ folder (looked in the site's, the packs' and "
                      "metadata's, in that order)")
            good = False
    if entity is not None and not entity.is_child and path in trees:
        FieldUses(run, entities, display_path(path)).check(trees[path], entity)
    if not good:
        return None
    listed = data.get("roles")
    return PrintDocument(
        name=name, entity=entity.name, label=Label.of(data.get("label"), name),
        template=template, paper=data.get("paper", "a4"),
        orientation=data.get("orientation", "portrait"),
        roles=_with_heirs(listed, roles) if listed else None, locale=data.get("locale"),
        description=Label.of(data["description"]) if data.get("description") else None,
        source=spot.where)


def _with_heirs(listed, roles) -> frozenset[str]:
    """The listed roles and every role that inherits one of them, however indirectly."""
    allowed = set(listed)
    changed = True
    while changed:
        changed = False
        for name, role in roles.items():
            if name not in allowed and allowed.intersection(role.inherits):
                allowed.add(name)
                changed = True
    return frozenset(allowed)


class FieldUses:
    """Checks the field names a document's template reads against its entity."""

    def __init__(self, run: CheckRun, entities: dict[str, Entity], shown: str):
        self.run, self.entities, self.shown = run, entities, shown

    def check(self, tree: nodes.Template, entity: Entity) -> None:
        scopes = {"record": entity}
        for loop in tree.find_all(nodes.For):
            lines = self._entity_of(loop.iter, scopes)
            if lines is not None and isinstance(loop.target, nodes.Name):
                for node in loop.body:
                    self._walk(node, {**scopes, loop.target.name: lines})
        self._walk(tree, scopes)

    def _walk(self, tree, scopes: dict[str, Entity]) -> None:
        for node in tree.find_all(nodes.Getattr):
            self._entity_of(node, scopes)
        for call in tree.find_all(nodes.Call):
            if isinstance(call.node, nodes.Name) and call.node.name in ("label", "show") \
                    and len(call.args) == 2 and isinstance(call.args[1], nodes.Const):
                target = call.args[0]
                entity = self.entities.get(target.value) if isinstance(target, nodes.Const) \
                    and isinstance(target.value, str) else self._entity_of(target, scopes)
                if entity is not None:
                    self._field(entity, call.args[1].value, call.lineno)

    def _entity_of(self, node, scopes: dict[str, Entity]) -> Entity | None:
        """The entity whose record `node` evaluates to (checking each step), or None."""
        if isinstance(node, nodes.Name):
            return scopes.get(node.name)
        if not isinstance(node, nodes.Getattr):
            return None
        owner = self._entity_of(node.node, scopes)
        if owner is None:
            return None
        fld = self._field(owner, node.attr, node.lineno)
        if fld is not None and fld.type == "reference" and fld.to in self.entities:
            return self.entities[fld.to]
        if fld is not None and fld.type == "lines":
            return self.entities.get(fld.child_entity)
        return None

    def _field(self, entity: Entity, name, line: int):
        if not isinstance(name, str):
            return None
        if name in entity.fields:
            return entity.fields[name]
        if name not in SYSTEM_FIELDS and name not in _VIEW_NAMES and not name.startswith("_"):
            self.run.problems.append(Problem(
                self.shown, line, 1, "unknown-field", f"template: '{entity.name}' has no field "
                f"'{name}'{did_you_mean(name, entity.fields)}"))
        return None
