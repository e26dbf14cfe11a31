"""Mermaid sources of the dictionary's diagrams: workflows as state diagrams, references
between entities as entity-relationship diagrams.

Mermaid (vendored in web/static/vendor/, see docs/dictionary.md) lays them out in the browser.
Every text from the configuration passes `text()`, which turns the characters Mermaid's syntax
gives a meaning to into its `#code;` entities, so a label or a guard can never end a statement
or open a comment; the HTML around the source is escaped by Jinja as usual.
"""

from __future__ import annotations

from typing import Mapping

from engine.dictionary.model import Dictionary, Reference
from engine.registry.model import Registry, Workflow

_ENTITIES = {"#": "#35;", '"': "#quot;", ";": "#59;", "%": "#37;"}


def text(value: str) -> str:
    """Return `value` safe inside a Mermaid label: one line, no syntax characters."""
    out = "".join(_ENTITIES.get(ch, ch) for ch in str(value))
    return " ".join(out.split())


def transition_label(registry: Registry, workflow: Workflow, name: str, locale: str,
                     words: Mapping[str, str]) -> str:
    """The words on a transition's arrow: label, roles, required fields, guard."""
    transition = workflow.transitions[name]
    parts = [transition.label.get(locale)]
    if transition.roles:
        parts.append("(" + ", ".join(_role_label(registry, r, locale)
                                     for r in transition.roles) + ")")
    if transition.require:
        parts.append(f"{words['requires']} " + ", ".join(transition.require))
    if transition.guard is not None:
        parts.append(f"[{transition.guard.source}]")
    return text(" ".join(parts))


def _role_label(registry: Registry, name: str, locale: str) -> str:
    role = registry.roles.get(name)
    return role.label.get(locale) if role is not None else name


def workflow_diagram(registry: Registry, workflow: Workflow, locale: str,
                     words: Mapping[str, str]) -> str:
    """Return the Mermaid state diagram of a workflow: every state, every transition from
    every source state, the initial state and the final ones."""
    lines = ["stateDiagram-v2", "  direction LR"]
    for state in workflow.states.values():
        # state ids are prefixed: a state called `end` or `state` would be a keyword
        lines.append(f'  state "{text(state.label.get(locale))}" as s_{state.name}')
    lines.append(f"  [*] --> s_{workflow.initial}")
    for name, transition in workflow.transitions.items():
        label = transition_label(registry, workflow, name, locale, words)
        for source in transition.sources:
            lines.append(f"  s_{source} --> s_{transition.target} : {label}")
    for state in workflow.states.values():
        if state.final:
            lines.append(f"  s_{state.name} --> [*]")
    return "\n".join(lines)


def _relation(ref: Reference) -> str:
    if ref.kind == "lines":
        return "||--o{"  # one parent has zero or more lines
    # many records point at one target; an optional reference may point at none
    return "}o--||" if ref.required else "}o--o|"


def reference_diagram(dictionary: Dictionary, entities: set[str] | None, locale: str,
                      words: Mapping[str, str], include_users: bool = True) -> str:
    """Return the Mermaid ER diagram of the references touching `entities` (every entity when
    None): those entities, and the ones they point at or are pointed at by."""
    registry = dictionary.registry
    refs = [r for r in dictionary.references
            if (entities is None or r.source in entities or r.target in entities)
            and (include_users or r.target != "user")]
    shown = set(entities or ()) | {r.source for r in refs} | {r.target for r in refs}
    if entities is None:
        shown |= set(registry.entities)
    # left to right: a much-referenced entity (customer) then stacks its many neighbours in
    # a column to scroll down, instead of a row many screens wide
    lines = ["erDiagram", "  direction LR"]
    for name in sorted(shown):
        label = words["user"] if name == "user" else registry.entities[name].label.get(locale)
        lines.append(f'  e_{name}["{text(label)}"]')
    for ref in refs:
        field_label = registry.entities[ref.source].fields[ref.field].label.get(locale)
        lines.append(f'  e_{ref.source} {_relation(ref)} e_{ref.target} : '
                     f'"{text(field_label)}"')
    return "\n".join(lines)


def neighbourhood_diagram(dictionary: Dictionary, entity: str, locale: str,
                          words: Mapping[str, str]) -> str:
    """Return the references of one entity: what it points at and what points at it."""
    return reference_diagram(dictionary, {entity}, locale, words)


def module_diagram(dictionary: Dictionary, module: str, locale: str,
                   words: Mapping[str, str]) -> str:
    """Return the references of a module's entities, with their neighbours outside it."""
    group = next(g for g in dictionary.modules if g.name == module)
    return reference_diagram(dictionary, set(group.entities), locale, words)


def model_diagram(dictionary: Dictionary, locale: str, words: Mapping[str, str]) -> str:
    """Return every entity and reference; references to users are left out, since nearly
    every entity has one and they would pull the whole picture into one knot."""
    return reference_diagram(dictionary, None, locale, words, include_users=False)
