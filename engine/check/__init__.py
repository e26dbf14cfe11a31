"""Check a layered configuration and compile it into a Registry, or report every problem."""

from __future__ import annotations

import re
from pathlib import Path
from types import MappingProxyType

from engine.check.access import compile_roles
from engine.check.analytics import compile_dashboards, compile_reports
from engine.check.context import CheckRun, Spot
from engine.check.currencies import base_currency, check_conversions, compile_currencies
from engine.check.definitions import pick_definitions
from engine.check.documents import compile_documents
from engine.check.entities import compile_entities, compile_entity_expressions, merge_entities
from engine.check.inbound import compile_inbound
from engine.check.lookups import compile_lookups
from engine.check.mail import compile_mail
from engine.check.processes import compile_automations, compile_workflows, inject_workflow_fields
from engine.version import engine_version
from engine.config.layers import CONTENT_ROOT, Layer, fingerprint, resolve_layers
from engine.errors import ConfigError, Problem, did_you_mean
from engine.registry.labels import Label
from engine.registry.model import AppInfo, Module, PackInfo, Registry, SeedSet


def build_registry(layers: list[Layer], problems: list | None = None) -> Registry:
    """Compile read layers into a Registry; raise ConfigError listing every problem."""
    run = CheckRun(list(problems or []))
    drafts = merge_entities(run, layers)
    workflow_docs = pick_definitions(run, layers, "workflow", "workflow")
    inject_workflow_fields(run, workflow_docs, drafts)
    entities = compile_entities(run, drafts)
    entities = compile_entity_expressions(run, drafts, entities)
    entities = compile_lookups(run, drafts, entities)
    entities = compile_currencies(run, drafts, entities)
    roles = compile_roles(run, layers, entities)
    _check_assignment_roles(run, drafts, entities, roles)
    workflows = compile_workflows(run, workflow_docs, entities, roles)
    automations = compile_automations(run, pick_definitions(run, layers, "automation",
                                                            "automation"),
                                      entities, workflows, roles)
    report_docs = pick_definitions(run, layers, "report", "report")
    reports = compile_reports(run, report_docs, entities, workflows)
    dashboard_docs = pick_definitions(run, layers, "dashboard", "dashboard")
    dashboards = compile_dashboards(run, dashboard_docs, entities, reports, roles, set(report_docs))
    base = base_currency(run, layers)
    check_conversions(run, base, report_docs, reports, dashboard_docs, dashboards, entities)
    inbound = compile_inbound(run, pick_definitions(run, layers, "inbound", "inbound"),
                              entities, workflows)
    mail = compile_mail(run, layers, entities)
    documents, document_folders = compile_documents(run, layers, entities, roles)
    modules = _modules(layers)
    seeds = _seeds(run, layers, entities)
    if run.problems:
        raise ConfigError(_without_cascades(run.problems, layers))
    packs, app = _identities(layers)
    by_entity = {w.entity: w for w in workflows.values()}
    return Registry(
        entities=MappingProxyType(entities), workflows=MappingProxyType(workflows),
        roles=MappingProxyType(roles), automations=MappingProxyType(automations),
        reports=MappingProxyType(reports), dashboards=MappingProxyType(dashboards),
        modules=MappingProxyType(modules), packs=packs, app=app, seeds=seeds,
        layers=tuple(layer.name for layer in layers),
        workflow_by_entity=MappingProxyType(by_entity), inbound=MappingProxyType(inbound),
        documents=MappingProxyType(documents), document_folders=document_folders,
        mail=mail,
        base_currency=base,
        seed_folders=tuple(str(layer.folder / "seed") for layer in layers
                           if (layer.folder / "seed").is_dir()),
        fingerprint=fingerprint(layers, engine_version()))


_UNKNOWN_NAME = re.compile(r"(?:unknown (?:entity|role|report)|cannot extend) '([^']+)'")
_NAMED_BY = {"entity": "entity", "workflow": "workflow", "report": "report",
             "automation": "automation", "dashboard": "dashboard", "inbound": "inbound",
             "document": "document"}


def _without_cascades(problems: list[Problem], layers: list[Layer]) -> list[Problem]:
    """Drop "unknown X" problems about names whose own file failed the schema check.

    Such a file is reported already; saying again everywhere it is used would bury the one
    mistake to fix under its echoes.
    """
    broken: set[str] = set()
    for layer in layers:
        for doc in layer.broken:
            data = doc.data
            key = _NAMED_BY.get(doc.kind)
            if key and isinstance(data.get(key), str):
                broken.add(data[key])
            if doc.kind == "roles" and isinstance(data.get("roles"), dict):
                broken.update(data["roles"])
    if not broken:
        return problems
    kept = []
    for problem in problems:
        match = _UNKNOWN_NAME.search(problem.message)
        if match and match.group(1) in broken:
            continue
        kept.append(problem)
    return kept


def load_registry(site: str | Path | None = None, pack: str | None = None,
                  root: Path = CONTENT_ROOT) -> Registry:
    """Read and compile a site (or, without one, `pack` on top of metadata/)."""
    layers, problems = resolve_layers(Path(site) if site is not None else None, root, pack)
    return build_registry(layers, problems)


def _modules(layers: list[Layer]) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for layer in layers:
        for doc in (d for d in layer.documents if d.kind == "modules"):
            for name, spec in doc.data["modules"].items():
                old = modules.get(name)
                modules[name] = Module(
                    name, Label.of(spec.get("label") or (old.label.texts if old else None), name),
                    spec.get("order", old.order if old else 1000),
                    spec.get("icon", old.icon if old else None))
    return dict(sorted(modules.items(), key=lambda item: (item[1].order, item[0])))


def _seeds(run: CheckRun, layers: list[Layer], entities) -> tuple[SeedSet, ...]:
    seeds = []
    for layer in layers:
        for doc in (d for d in layer.documents if d.kind == "seed"):
            name = doc.data["entity"]
            if name not in entities:
                run.error(Spot(doc, ("entity",)), "unknown-entity",
                          f"seed: unknown entity '{name}'{did_you_mean(name, entities)}")
                continue
            for i, record in enumerate(doc.data["records"]):
                _check_seed_record(run, Spot(doc, ("records", i)), entities[name], record,
                                   entities)
            seeds.append(SeedSet(name, tuple(MappingProxyType(r) for r in doc.data["records"]),
                                 Spot(doc).where))
    return tuple(seeds)


def _check_assignment_roles(run: CheckRun, drafts, entities, roles) -> None:
    for name, entity in entities.items():
        for rule in entity.assignment:
            if rule.role and rule.role not in roles:
                spot = drafts[name].top_spots["assignment"] / rule.index / "round_robin" / "role"
                run.error(spot, "unknown-role", f"assignment: unknown role '{rule.role}'"
                          f"{did_you_mean(rule.role, roles)}")


def _check_seed_record(run: CheckRun, spot: Spot, entity, record: dict, entities) -> None:
    """Check a sample record's keys and its literal values (references may be titles)."""
    for key, value in record.items():
        fld = entity.fields.get(key)
        if key == "owner":
            continue
        if fld is None:
            run.error(spot / key, "unknown-field", f"seed: '{entity.name}' has no field "
                      f"'{key}'{did_you_mean(key, entity.fields)}", key=True)
            continue
        if value is None or fld.type in ("reference", "json", "rollup", "autonumber"):
            continue
        if fld.type == "lines":
            child = entities[fld.child_entity]
            for j, line in enumerate(value if isinstance(value, list) else []):
                if isinstance(line, dict):
                    _check_seed_record(run, spot / key / j, child, line, entities)
            continue
        try:
            fld.kind.parse_literal(value, fld.option_values)
        except ValueError as exc:
            run.error(spot / key, "bad-value", f"seed: {entity.name}.{key} {exc}")


def _identities(layers: list[Layer]) -> tuple[tuple[PackInfo, ...], AppInfo | None]:
    packs, app = [], None
    for layer in layers:
        doc = layer.identity
        if doc is None:
            continue
        data = doc.data
        if layer.kind == "pack":
            packs.append(PackInfo(data["pack"], Label.of(data.get("label"), data["pack"]),
                                  Label.of(data["description"]) if data.get("description")
                                  else None, str(data.get("version", "0.0.0")),
                                  tuple(data.get("extends") or ())))
        elif layer.kind == "site":
            app = AppInfo(data["app"], Label.of(data.get("label"), data["app"]), data.get("pack"),
                          data.get("locale", "en"), data.get("database"),
                          data.get("token_days", 30), data.get("max_body_mb", 10.0),
                          str(layer.folder), tuple(data.get("webhook_allow") or ()),
                          files_dir=data.get("files_dir"),
                          company=MappingProxyType({k: Label.of(v) for k, v in
                                                    (data.get("company") or {}).items()}))
    return tuple(packs), app
