"""Filters that format numbers, money and dates in a document's language.

Each takes the empty value (None, an undefined name such as a hidden field, "") to an empty
text, so a template need not test every field before formatting it.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from jinja2 import Undefined, pass_context

MONTHS = {"en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                 "Dec"),
          "zh": tuple(f"{m}月" for m in range(1, 13))}
MONTH_NAMES = {"en": ("January", "February", "March", "April", "May", "June", "July", "August",
                      "September", "October", "November", "December"),
               "zh": MONTHS["zh"]}


MAX_PLACES = 100  # decimals a number may be shown with
MAX_DIGITS = 1_000  # digits a number shown may have (a bound on a text's size)


def empty(value) -> bool:
    return value is None or isinstance(value, Undefined) or value == "" or value == []


def to_decimal(value, what: str) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{what}: true/false is not a number")
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{what}: '{value}' is not a number") from None


def grouped(value, places: int | None, what: str = "number") -> str:
    """`value` with thousands separated, rounded half up to `places` decimals (None: as is)."""
    number = to_decimal(value, what)
    if places is not None and abs(int(places)) > MAX_PLACES:
        raise ValueError(f"{what}: decimals must be at most {MAX_PLACES}")
    if number.is_finite() and abs(number.adjusted()) > MAX_DIGITS:
        raise ValueError(f"{what}: a number beyond {MAX_DIGITS} digits is not shown")
    if places is not None:
        number = number.quantize(Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_UP)
    return format(number, ",f")


def money(value, currency=None, places=2) -> str:
    """Return `1,234.50`, or `USD 1,234.50` with a currency code."""
    if empty(value):
        return ""
    text = grouped(value, places, "money")
    return f"{currency} {text}" if not empty(currency) else text


def number(value, places=None) -> str:
    if empty(value):
        return ""
    return grouped(value, places)


def percent(value, places=None) -> str:
    if empty(value):
        return ""
    return grouped(value, places, "percent") + "%"


def _as_date(value, what: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).date() if value.tzinfo else value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ValueError(f"{what}: '{value}' is not a date") from None


def format_date(value: dt.date, locale: str, pattern: str | None = None) -> str:
    if pattern is None:
        if locale == "zh":
            return f"{value.year}年{value.month}月{value.day}日"
        return f"{value.day} {MONTHS['en'][value.month - 1]} {value.year}"
    months = MONTHS.get(locale, MONTHS["en"])
    names = MONTH_NAMES.get(locale, MONTH_NAMES["en"])
    # month names come from these tables, not from the server's C locale
    pattern = pattern.replace("%b", months[value.month - 1]).replace(
        "%B", names[value.month - 1])
    return value.strftime(pattern)


@pass_context
def date(context, value, pattern=None) -> str:
    """Return `25 Nov 2026` / `2026年11月25日`, or the date in a strftime `pattern`."""
    if empty(value):
        return ""
    return format_date(_as_date(value, "date"), context.get("locale", "en"), pattern)


@pass_context
def date_time(context, value) -> str:
    """Return the date and the time in UTC: `25 Nov 2026 14:05 UTC`."""
    if empty(value):
        return ""
    if not isinstance(value, dt.datetime):
        try:
            value = dt.datetime.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"datetime: '{value}' is not a date and time") from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    return f"{format_date(value.date(), context.get('locale', 'en'))} {value:%H:%M} UTC"


FILTERS = {"money": money, "number": number, "percent": percent, "date": date,
           "datetime": date_time}
