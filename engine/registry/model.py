"""The compiled, immutable registry: everything runtime code needs, and nothing of YAML.

Objects are frozen dataclasses; collections are tuples and read-only mappings. The checker
(`engine.check`) is the only place that builds them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, Mapping

from engine.expr import Expression
from engine.registry.analyses import Analysis
from engine.registry.fieldtypes import FieldKind
from engine.registry.labels import Label

SYSTEM_FIELDS = ("id", "version", "created_at", "updated_at", "created_by", "updated_by",
                 "owner", "deleted_at")
RESERVED_ENTITY_NAMES = frozenset({"auth", "me", "meta", "users", "user", "reports",
                                   "dashboards", "notifications", "openapi", "inbound",
                                   # /admin: the admin console (web/admin.py); /exports:
                                   # background list exports; the operations endpoints
                                   "admin", "exports", "healthz", "readyz", "metrics",
                                   "sessions"})  # /sessions: the user's own sign-ins
ACTIONS = ("read", "create", "update", "delete", "change_owner")
EMPTY: Mapping = MappingProxyType({})


@dataclass(frozen=True)
class Option:
    value: str
    label: Label


@dataclass(frozen=True)
class FieldLookup:
    """Where an empty field takes its value from: the best matching record of another entity
    (a price list entry for an order line). See engine.records.lookups and docs/language.md."""

    source: str  # the entity searched (`from`)
    take: str  # the field of the chosen record copied into this one
    match: Mapping[str, Expression]  # candidate field -> expression over this record
    valid: tuple[str, str] | None = None  # candidate (from, to) date fields; empty = open
    on: Expression | None = None  # the date tested against `valid`; None: today()
    order: tuple[tuple[str, bool], ...] = ()  # (candidate field, descending) tie-breaks
    where: Expression | None = None  # over the candidate, in the SQL subset
    # fields of this record (and, for a line, of its parent) the expressions read: a change
    # to one of them resolves an empty field again on update
    inputs: frozenset[str] = frozenset()
    parent_inputs: frozenset[str] = frozenset()
    # reference fields of this record whose target's fields the expressions read (not just
    # the id): the record service loads those targets for the scope
    deep_references: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Field:
    """One field of an entity, with its typed kind and every rule that applies to it."""

    name: str
    kind: FieldKind
    label: Label
    help: Label | None = None
    required: bool = False
    default: Any = None  # a literal of the field's kind, or None
    default_expr: Expression | None = None
    unique: bool = False
    index: bool = False
    read_only: bool = False
    hidden: bool = False
    track: bool = True
    visible_if: Expression | None = None
    required_if: Expression | None = None
    read_only_if: Expression | None = None
    compute: Expression | None = None
    renamed_from: str | None = None
    removed: bool = False  # hidden with `remove: true`: column and data kept, field unused
    max_length: int | None = None
    pattern: str | None = None
    min: Any = None
    max: Any = None
    precision: int | None = None
    scale: int | None = None
    currency: str | None = None  # money, rollup: an ISO code, or the field holding one
    rate_date: str | None = None  # the date field choosing the exchange rate (currency)
    holds_currency: bool = False  # a string field a money field takes its currency from
    options: tuple[Option, ...] = ()
    to: str | None = None  # reference target entity or "user"
    on_delete: str = "restrict"
    child_entity: str | None = None  # lines
    rollup_of: str | None = None  # lines field name, or "entity.field" reverse reference
    rollup_field: str | None = None
    rollup_agg: str | None = None
    rollup_where: Expression | None = None
    number_pattern: str | None = None  # autonumber pattern
    max_mb: float | None = None  # file: largest upload, in MB (the request limit applies too)
    accept: tuple[str, ...] = ()  # file: content types taken, as sniffed ("image/*" allowed)
    lookup: FieldLookup | None = None  # filled from another entity's record when left empty

    @property
    def type(self) -> str:
        return self.kind.name

    @cached_property
    def option_values(self) -> tuple[str, ...]:
        return tuple(o.value for o in self.options)

    @property
    def writable(self) -> bool:
        """Whether a client may ever send a value for this field."""
        return self.kind.writable and self.compute is None and not self.read_only


@dataclass(frozen=True)
class Validation:
    rule: Expression
    message: Label


@dataclass(frozen=True)
class FormSection:
    label: Label
    fields: tuple[str, ...]
    visible_if: Expression | None = None


@dataclass(frozen=True)
class AssignmentRule:
    """Who owns a new record: the first rule whose `when` holds and that names a user wins."""

    kind: str  # "round_robin" | "by_field" | "user"
    when: Expression | None = None
    role: str | None = None
    users: tuple[str, ...] = ()  # usernames
    field: str | None = None
    # field value -> username (`field` above hides dataclasses.field inside this class body)
    mapping: Mapping[str, str] = dataclasses.field(default_factory=lambda: EMPTY)
    index: int = 0


@dataclass(frozen=True)
class Entity:
    """An entity: its fields (active ones in order), layout, rules and derived views."""

    name: str
    label: Label
    plural: Label
    module: str
    title: str
    fields: Mapping[str, Field]  # active fields, in declaration order
    # fields hidden with `remove: true`: their columns and data are kept
    removed_fields: Mapping[str, Field] = field(default_factory=lambda: EMPTY)
    parent: str | None = None
    indexes: tuple[tuple[str, ...], ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    validations: tuple[Validation, ...] = ()
    list_columns: tuple[str, ...] = ()
    list_filters: tuple[str, ...] = ()
    list_sort: tuple[tuple[str, bool], ...] = ()  # (field, descending)
    search_fields: tuple[str, ...] = ()
    form_sections: tuple[FormSection, ...] = ()
    workflow: str | None = None
    description: Label | None = None
    source: str = ""  # "path:line:col" of its definition, for messages
    assignment: tuple[AssignmentRule, ...] = ()

    def field(self, name: str) -> Field:
        return self.fields[name]

    @property
    def is_child(self) -> bool:
        return self.parent is not None


@dataclass(frozen=True)
class State:
    name: str
    label: Label
    final: bool = False


@dataclass(frozen=True)
class CreateSpec:
    """A record a transition creates: entity, the `as` name, field -> expression."""

    entity: str
    alias: str | None
    values: Mapping[str, Expression]


@dataclass(frozen=True)
class Transition:
    name: str
    label: Label
    sources: tuple[str, ...]
    target: str
    roles: tuple[str, ...] = ()
    require: tuple[str, ...] = ()
    guard: Expression | None = None
    set: Mapping[str, Expression] = field(default_factory=lambda: EMPTY)
    create: tuple[CreateSpec, ...] = ()
    # the user who moved the record into its current state may not fire this one
    forbid_self_approval: bool = False


@dataclass(frozen=True)
class Workflow:
    name: str
    label: Label
    entity: str
    field: str
    initial: str
    states: Mapping[str, State]
    transitions: Mapping[str, Transition]

    def transitions_from(self, state: str) -> tuple[Transition, ...]:
        return tuple(t for t in self.transitions.values() if state in t.sources)


@dataclass(frozen=True)
class Action:
    """One step of an automation: kind is transition, set, notify or create."""

    kind: str
    transition: str | None = None
    values: Mapping[str, Expression] = field(default_factory=lambda: EMPTY)
    entity: str | None = None
    notify_role: str | None = None
    notify_to: str | None = None  # "owner" or a user reference field
    message: Label | None = None
    title: Label | None = None
    url: str | None = None  # webhook
    secret_env: str | None = None  # webhook: the environment variable holding the HMAC key


@dataclass(frozen=True)
class Automation:
    name: str
    label: Label
    entity: str
    event: str | None  # created | updated | deleted | transition
    transition: str | None  # for event == "transition"
    schedule: str | None
    schedule_seconds: int | None
    schedule_at: str | None  # "HH:MM" for daily schedules
    condition: Expression | None
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class InboundSource:
    """An inbound webhook: a sender that changes records of one entity by signed POSTs.

    Paths into the JSON body are tuples of keys (a digit string also picks a list item).
    """

    name: str
    label: Label
    secret_env: str  # the environment variable holding the shared HMAC secret
    signature_header: str
    entity: str
    match: Mapping[str, tuple[str, ...]]  # field -> body path
    set: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: EMPTY)
    event_id_path: tuple[str, ...] | None = None
    event_id_header: str | None = None
    timestamp_header: str | None = None
    tolerance: int = 300  # seconds
    transition: str | None = None
    transition_when: Mapping[tuple[str, ...], Any] = field(default_factory=lambda: EMPTY)
    create_if_missing: bool = False
    source: str = ""  # "path:line:col" of its definition


@dataclass(frozen=True)
class SharingRule:
    """Records a role may act on beyond its own (DSL §6, extended): those for which `where`
    holds (an expression over the record and `user`), and/or for which a live record of the
    `through` entity exists whose `user` field is the acting user and whose `match` fields
    equal the record's (`{hospital: id, product_line: product_line}`). With `own`, the user's
    own records too. Always evaluated in the database, on every read path."""

    where: Expression | None = None
    through: str | None = None
    user: str | None = None
    match: Mapping[str, str] = field(default_factory=dict)  # through field -> record field
    own: bool = False


@dataclass(frozen=True)
class EntityAccess:
    """What a role may do with one entity: each action is "all", "own", a SharingRule (read,
    update, delete) or None."""

    read: str | SharingRule | None = None
    create: str | None = None
    update: str | SharingRule | None = None
    delete: str | SharingRule | None = None
    change_owner: str | None = None


@dataclass(frozen=True)
class Role:
    name: str
    label: Label
    entities: Mapping[str, EntityAccess]
    fields: Mapping[str, str]  # "entity.field" -> "read" | "hidden"
    inherits: tuple[str, ...] = ()


@dataclass(frozen=True)
class Measure:
    name: str
    label: Label
    agg: str | None = None
    field: str | None = None  # of the report's entity, or of `of_entity` when that is set
    where: Expression | None = None  # about the same records as `field`
    expr: Expression | None = None
    format: str = "number"
    # a measure over related records (`of: payment.campaign`): records of `of_entity` whose
    # reference field `of_field` points at the grouped records of the report's entity
    of_entity: str | None = None
    of_field: str | None = None


@dataclass(frozen=True)
class GroupBy:
    field: str
    bucket: str | None = None  # day week month quarter year


@dataclass(frozen=True)
class Report:
    name: str
    label: Label
    entity: str
    where: Expression | None
    group_by: tuple[GroupBy, ...]
    measures: Mapping[str, Measure]
    sort: tuple[tuple[str, bool], ...] = ()
    chart: str = "table"
    limit: int | None = None
    description: Label | None = None
    analysis: Analysis | None = None  # a built-in analytic kind instead of group_by/measures

    @property
    def kind(self) -> str:
        """`group` for a group-by report, else the analytic kind (rfm, funnel...)."""
        return self.analysis.kind if self.analysis is not None else "group"


@dataclass(frozen=True)
class Widget:
    report: str | None = None
    label: Label | None = None
    metric_entity: str | None = None
    metric_agg: str | None = None
    metric_field: str | None = None
    metric_where: Expression | None = None
    format: str = "number"
    width: str = "half"


@dataclass(frozen=True)
class Dashboard:
    name: str
    label: Label
    roles: tuple[str, ...]
    widgets: tuple[Widget, ...]
    order: int = 0


@dataclass(frozen=True)
class Module:
    name: str
    label: Label
    order: int = 1000
    icon: str | None = None


@dataclass(frozen=True)
class PackInfo:
    name: str
    label: Label
    description: Label | None
    version: str
    extends: tuple[str, ...]


@dataclass(frozen=True)
class AppInfo:
    name: str
    label: Label
    pack: str | None
    locale: str = "en"
    database: str | None = None
    token_days: int = 30
    max_body_mb: float = 10.0
    folder: str | None = None
    webhook_allow: tuple[str, ...] = ()
    files_dir: str | None = None  # where uploaded files are stored (engine/storage/files.py)
    company: Mapping[str, Label] = field(default_factory=lambda: EMPTY)  # printed on documents


@dataclass(frozen=True)
class PrintDocument:
    """A printable document of an entity: a Jinja2 template rendered to HTML and PDF
    (engine/documents, docs/language.md#17-printable-documents)."""

    name: str
    entity: str
    label: Label
    template: str  # loader name: a path inside the layers' documents/ folders
    paper: str = "a4"
    orientation: str = "portrait"
    roles: frozenset[str] | None = None  # None: whoever may read the record; else these
    # (the listed roles and every role inheriting one)
    locale: str | None = None  # None: the user's language
    description: Label | None = None
    source: str = ""


@dataclass(frozen=True)
class SeedSet:
    entity: str
    records: tuple[Mapping[str, Any], ...]
    source: str


@dataclass(frozen=True)
class Registry:
    """The whole compiled configuration of a site."""

    entities: Mapping[str, Entity]
    workflows: Mapping[str, Workflow]
    roles: Mapping[str, Role]
    automations: Mapping[str, Automation]
    reports: Mapping[str, Report]
    dashboards: Mapping[str, Dashboard]
    modules: Mapping[str, Module]
    packs: tuple[PackInfo, ...] = ()
    app: AppInfo | None = None
    seeds: tuple[SeedSet, ...] = ()
    layers: tuple[str, ...] = ()
    workflow_by_entity: Mapping[str, Workflow] = field(default_factory=lambda: EMPTY)
    inbound: Mapping[str, InboundSource] = field(default_factory=lambda: EMPTY)
    documents: Mapping[str, PrintDocument] = field(default_factory=lambda: EMPTY)
    # the layers' documents/ folders, highest layer first: where templates are looked up
    document_folders: tuple[str, ...] = ()
    mail: "MailConfig | None" = None  # the mail: section (engine/registry/mail.py)
    base_currency: str | None = None  # reports convert money into it (engine/records/currency.py)
    # the layers' seed/ folders, lowest layer first: sample data that is not records (exchange
    # rates, a mailbox) is read from them (engine/records/seedfiles.py)
    seed_folders: tuple[str, ...] = ()
    # the configuration's identity (engine/config/layers.py `fingerprint`): `crm migrate`
    # records it as the applied version every process of the site follows
    fingerprint: str = ""

    @property
    def pack(self) -> PackInfo | None:
        return self.packs[-1] if self.packs else None

    def summary(self) -> str:
        roles = len(self.roles) + (0 if "admin" in self.roles else 1)
        return (f"{len(self.entities)} entities, {len(self.workflows)} workflows, "
                f"{roles} roles")
