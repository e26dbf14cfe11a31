"""The built-in analytic kinds of report, compiled: one frozen object per kind.

A report with `kind:` names an analysis instead of `group_by` and `measures`; each kind keeps
only the keys it uses, already checked against the report's entity, and lists the columns it
answers with (which `sort` may name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Union


@dataclass(frozen=True)
class Rfm:
    """Recency, frequency and monetary scores (1-5) per customer of the report's records."""

    customer: str  # reference field of the report's entity naming who bought
    date: str  # date or datetime field (or created_at) of the purchase
    amount: str  # numeric field summed as the monetary value
    kind: ClassVar[str] = "rfm"
    columns: ClassVar[tuple[str, ...]] = (
        "customer", "last_purchase", "recency_days", "frequency", "monetary", "r_score",
        "f_score", "m_score", "rfm", "segment", "segment_label")


@dataclass(frozen=True)
class PurchaseCycle:
    """Average days between purchases per customer, the next purchase it predicts, overdue."""

    customer: str
    date: str
    kind: ClassVar[str] = "purchase_cycle"
    columns: ClassVar[tuple[str, ...]] = (
        "customer", "purchases", "first_purchase", "last_purchase", "average_days",
        "next_purchase", "days_overdue")


@dataclass(frozen=True)
class Basket:
    """Products bought together in one record (a basket) of the report's entity."""

    lines: str  # lines field of the report's entity
    line_entity: str  # its child entity
    product: str  # reference field of the child entity naming the product
    product_entity: str
    min_support: float  # share of baskets a pair must appear in, 0 < s <= 1
    kind: ClassVar[str] = "basket"
    columns: ClassVar[tuple[str, ...]] = (
        "product", "also_bought", "baskets", "support", "confidence", "lift")


@dataclass(frozen=True)
class Funnel:
    """Records per workflow state, step-to-step conversion and days spent per state."""

    workflow: str
    field: str  # the workflow's state field
    states: tuple[str, ...]  # the funnel's steps, in order
    kind: ClassVar[str] = "funnel"
    columns: ClassVar[tuple[str, ...]] = (
        "state", "records", "reached", "conversion", "average_days")


@dataclass(frozen=True)
class Forecast:
    """A monthly sum (or count) projected forward; the method is in docs/reports.md."""

    date: str
    amount: str | None  # None: count records
    months: int  # months projected, the current one first
    history: int  # complete months read back
    kind: ClassVar[str] = "forecast"
    columns: ClassVar[tuple[str, ...]] = ("month", "actual", "forecast")


Analysis = Union[Rfm, PurchaseCycle, Basket, Funnel, Forecast]
ANALYSES: dict[str, type] = {cls.kind: cls for cls in (Rfm, PurchaseCycle, Basket, Funnel,
                                                       Forecast)}
