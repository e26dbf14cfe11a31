"""Find the layers of a site (metadata/, the pack and its `extends:` chain, the site folder)
and read every configuration document in them, with positions.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.config.shape import check_shape
from engine.config.yamlsource import SourceDoc, read_yaml
from engine.errors import Problem, did_you_mean

CONTENT_ROOT = Path(os.environ.get("CRM_CONTENT_ROOT") or Path(__file__).resolve().parents[2])
"""The folder holding `metadata/` and `industry_packs/`: the checkout (or site-packages), or
$CRM_CONTENT_ROOT for a private collection of packs."""

FOLDERS = {  # sub-folder of a layer -> document kind
    "entities": "entity", "workflows": "workflow", "automations": "automation",
    "reports": "report", "dashboards": "dashboard", "seed": "seed", "inbound": "inbound",
    "documents": "document",  # printable documents; their templates sit beside them
}
ROOT_FILES = {"roles.yaml": "roles", "modules.yaml": "modules"}


@dataclass
class Document:
    """One configuration file: its kind, its layer and its parsed content."""

    kind: str
    layer: "Layer"
    source: SourceDoc

    @property
    def data(self):
        return self.source.data

    def problem(self, path, code: str, message: str, key: bool = False) -> Problem:
        return self.source.problem(path, code, message, key=key)


@dataclass
class Layer:
    """One layer of configuration: metadata/, a pack, or the site."""

    name: str  # "metadata", the pack identifier, or "site"
    kind: str  # "metadata" | "pack" | "site"
    folder: Path
    identity: Document | None = None  # pack.yaml or app.yaml
    documents: list[Document] = field(default_factory=list)
    broken: list[Document] = field(default_factory=list)  # failed the schema; not compiled


def display_path(path: Path) -> str:
    """Return the path as a consultant should see it in an error line."""
    path = path.resolve()
    for base in (Path.cwd().resolve(), CONTENT_ROOT):
        try:
            return str(path.relative_to(base))
        except ValueError:
            continue
    return str(path)


def available_packs(root: Path = CONTENT_ROOT) -> dict[str, Path]:
    """Return the industry packs shipped with the engine: identifier -> folder."""
    packs_dir = root / "industry_packs"
    if not packs_dir.is_dir():
        return {}
    return {p.name: p for p in sorted(packs_dir.iterdir()) if (p / "pack.yaml").is_file()}


def read_layer(layer: Layer, problems: list[Problem]) -> None:
    """Read every document of a layer into `layer.documents`."""
    for name, kind in ROOT_FILES.items():
        for path in (layer.folder / name, layer.folder / name.replace(".yaml", ".yml")):
            if path.is_file():
                _read(layer, path, kind, problems)
    for folder, kind in FOLDERS.items():
        sub = layer.folder / folder
        if not sub.is_dir():
            continue
        for path in sorted(sub.iterdir()):
            if path.suffix in (".yaml", ".yml") and path.is_file():
                _read(layer, path, kind, problems)


def _read(layer: Layer, path: Path, kind: str, problems: list[Problem]) -> Document | None:
    source, found = read_yaml(path, display_path(path))
    problems.extend(found)
    if source is None:
        return None
    if source.data is None:
        problems.append(Problem(source.display, 1, 1, "empty-file", "file is empty"))
        return None
    if kind == "entity" and isinstance(source.data, dict) and "extend" in source.data:
        kind = "extension"
    shape_problems = check_shape(source, kind)
    problems.extend(shape_problems)
    doc = Document(kind, layer, source)
    if shape_problems:
        if isinstance(source.data, dict):
            layer.broken.append(doc)
            if kind in ("pack", "app"):  # still follow its `pack:` to load the right layers
                layer.identity = doc
        return None
    if kind in ("pack", "app"):
        layer.identity = doc
    else:
        layer.documents.append(doc)
    return doc


def resolve_layers(site_dir: Path | None, root: Path = CONTENT_ROOT,
                   pack: str | None = None) -> tuple[list[Layer], list[Problem]]:
    """Return the layers of a site, lowest first, each with its documents read.

    `site_dir` holds app.yaml; without it, `pack` (or nothing) names the pack to load, so a
    pack can be checked on its own.
    """
    problems: list[Problem] = []
    layers = [Layer("metadata", "metadata", root / "metadata")]
    site: Layer | None = None
    pack_ref: tuple[Document, tuple] | None = None
    if site_dir is not None:
        site = Layer("site", "site", Path(site_dir))
        app_path = site.folder / "app.yaml"
        if not app_path.is_file():
            problems.append(Problem(display_path(app_path), 1, 1, "app-missing",
                                    "no app.yaml in the site folder (crm init DIR --pack NAME "
                                    "creates one)"))
        else:
            _read(site, app_path, "app", problems)
            if site.identity is not None and isinstance(site.identity.data.get("pack"), str):
                pack = site.identity.data["pack"]
                pack_ref = (site.identity, ("pack",))

    packs = available_packs(root)
    for name in _pack_chain(pack, packs, pack_ref, problems):
        layer = Layer(name, "pack", packs[name])
        _read(layer, packs[name] / "pack.yaml", "pack", problems)
        layers.append(layer)
    if site is not None:
        layers.append(site)
    for layer in layers:
        read_layer(layer, problems)
    return layers, problems


def _pack_chain(pack: str | None, packs: dict[str, Path], ref, problems) -> list[str]:
    """Return the pack and every pack it extends, bases first; report unknown and cyclic ones."""
    if not pack:
        return []
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str, where) -> None:
        if name in order:
            return
        if name in visiting:
            cycle = " -> ".join(visiting[visiting.index(name):] + [name])
            doc, path = where
            problems.append(doc.problem(path, "pack-cycle", f"circular 'extends': {cycle}"))
            return
        if name not in packs:
            msg = f"unknown pack '{name}'{did_you_mean(name, packs)}"
            if where is None:
                problems.append(Problem("<command line>", 1, 1, "unknown-pack", msg))
            else:
                doc, path = where
                problems.append(doc.problem(path, "unknown-pack", msg))
            return
        visiting.append(name)
        source, found = read_yaml(packs[name] / "pack.yaml", display_path(packs[name] / "pack.yaml"))
        if source is not None and isinstance(source.data, dict):
            if source.data.get("pack") != name:
                problems.append(source.problem(("pack",), "pack-name",
                                               f"pack identifier must equal its folder name "
                                               f"'{name}'"))
            extends = source.data.get("extends") or []
            if isinstance(extends, list):
                doc = Document("pack", Layer(name, "pack", packs[name]), source)
                for i, base in enumerate(extends):
                    if isinstance(base, str):
                        visit(base, (doc, ("extends", i)))
        visiting.pop()
        order.append(name)

    visit(pack, ref)
    return order


def fingerprint(layers: list[Layer], engine_version: str) -> str:
    """Identify a configuration by the bytes of every file the loader reads from its layers
    (seed data aside: it is not configuration) and the engine that compiles them.

    Every process of a site compares this with the one `crm migrate` recorded, so two
    machines whose site folders or engine versions differ know it (docs/deploy.md)."""
    digest = hashlib.sha256(f"engine {engine_version}\n".encode())
    for layer in layers:
        paths = [d.source.path for d in [layer.identity, *layer.documents, *layer.broken]
                 if d is not None and d.kind != "seed"]
        documents = layer.folder / "documents"
        if documents.is_dir():
            paths.extend(p for p in documents.rglob("*") if p.is_file())
        for path in sorted(set(paths)):
            try:
                data = path.read_bytes()
            except OSError:
                data = b""
            relative = path.relative_to(layer.folder) if path.is_relative_to(layer.folder) \
                else path.name
            digest.update(f"{layer.name}/{relative} {len(data)}\n".encode())
            digest.update(data)
    return digest.hexdigest()


def site_from_environment(explicit: str | os.PathLike | None) -> Path:
    """Return the site folder: the explicit one, else $CRM_SITE, else ./site."""
    return Path(explicit or os.environ.get("CRM_SITE") or "site")
