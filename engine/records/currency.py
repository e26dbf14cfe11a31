"""Money in several currencies: which currency an amount is in, exchange rates by day, and
amounts converted into the base currency inside the database (docs/language.md "Money and
currencies", docs/reports.md "Money in several currencies").

An amount's currency is its field's `currency`: a fixed ISO code, or the value of the field
it names on the same record; a money field without `currency` declares none. The
rate that converts a record's amount is the latest rate of its currency, for the site's base
currency, on or before the record's `rate_date` field (its creation day when that field is
empty or not set). An amount without a rate, or without a currency, is never converted 1:1
nor counted as 0: reports say which amounts they could not convert.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from pathlib import Path

import sqlalchemy as sa

from engine.errors import BadRequest, ValidationFailed
from engine.registry.currencies import ISO_4217, currency_hint
from engine.registry.model import Entity, Field, Registry
from engine.storage.database import write_transaction
from engine.storage.tables import UTCDateTime

UTC = dt.timezone.utc
CONVERTED_AGGS = ("sum", "avg", "min", "max")
MAX_RATE = Decimal("1e13")  # the column holds 14 digits before the point
ONE = Decimal(1)


# ------------------------------------------------------------------ which currency an amount is in

def currency_field(entity: Entity, fld: Field) -> str | None:
    """The field holding the currency of `fld`'s amounts, when they vary by record."""
    return fld.currency if fld.currency is not None and fld.currency in entity.fields else None


def fixed_currency(registry: Registry, entity: Entity, fld: Field) -> str | None:
    """The one currency of all of `fld`'s amounts, or None when it varies or is unknown."""
    if fld.type not in ("money", "rollup") or currency_field(entity, fld):
        return None
    return fld.currency  # a field without `currency` declares none (summed as it is)


def currency_of(registry: Registry, entity: Entity, fld: Field, record: dict | None) -> str | None:
    """The currency of `fld`'s amount on `record` (None when unknown)."""
    holder = currency_field(entity, fld)
    if holder is None:
        return fixed_currency(registry, entity, fld)
    value = (record or {}).get(holder)
    return value if value in ISO_4217 else None


def currency_meta(registry: Registry, entity: Entity, fld: Field) -> dict:
    """What the API's field description says about a field's currency (empty if nothing)."""
    holder = currency_field(entity, fld)
    if holder is not None:
        return {"currency_field": holder, "rate_date": fld.rate_date or "created_at"}
    code = fixed_currency(registry, entity, fld)
    return {"currency": code} if code else {}


def varies(entity: Entity, field_name: str | None) -> bool:
    fld = entity.fields.get(field_name or "")
    return fld is not None and currency_field(entity, fld) is not None


# ------------------------------------------------------------------ converting in SQL

class Conversion:
    """SQL for one money field of one table (or alias): its currency, the rate that applies
    to each row, and the amount in the base currency (NULL where no rate applies)."""

    def __init__(self, service, entity: Entity, fld: Field, table):
        base = service.registry.base_currency
        rates = service.schema.engine["exchange_rate"].alias()
        self.amount = table.c[fld.name]
        self.currency = table.c[currency_field(entity, fld)]
        self.day = _rate_day(table, entity, fld, service.engine.dialect.name)
        latest = (sa.select(rates.c.rate)
                  .where(rates.c.base == base, rates.c.currency == self.currency,
                         rates.c.day <= self.day)
                  .order_by(rates.c.day.desc()).limit(1).scalar_subquery())
        self.rate = sa.case((self.currency == base, sa.literal(ONE, sa.Numeric(24, 10))),
                            else_=latest)
        self.value = self.amount * self.rate
        # an amount that cannot be converted; zero is zero in every currency
        self.gap = sa.and_(self.amount != 0, self.value.is_(None))
        self.base = base


def _rate_day(table, entity: Entity, fld: Field, dialect: str):
    """The day whose rate converts a row: its `rate_date`, else the day it was created (UTC)."""
    def day_of(column):
        if not isinstance(column.type, UTCDateTime):
            return column
        if dialect == "sqlite":  # stored as UTC text; date() keeps the text comparable
            return sa.func.date(column)
        return sa.cast(sa.func.timezone("UTC", column), sa.Date)
    created = day_of(table.c.created_at)
    if not fld.rate_date or fld.rate_date == "created_at":
        return created
    return sa.func.coalesce(day_of(table.c[fld.rate_date]), created)


class ReportCurrencies:
    """The currency side of one group-by report: which measures convert, the currency of each
    money column, and (after the main query) the rates used and the amounts left over."""

    def __init__(self, service, report, entity: Entity):
        self.service = service
        self.registry = service.registry
        self.report = report
        self.entity = entity
        self.rates: list[dict] = []
        self.unconvertible: list[dict] = []
        self._blocked: set[tuple[str, tuple]] = set()  # (measure, group key) not convertible

    def source(self, measure) -> Entity:
        return self.registry.entities[measure.of_entity or self.entity.name]

    def converts(self, measure) -> bool:
        return measure.agg in CONVERTED_AGGS and varies(self.source(measure), measure.field)

    def target(self, measure, table):
        """The column a measure aggregates: the converted amount when its currency varies."""
        source = self.source(measure)
        if not self.converts(measure):
            return table.c[measure.field]
        return Conversion(self.service, source, source.fields[measure.field], table).value

    def missing(self, measure, table):
        """COUNT of a measure's rows that have an amount but no converted amount."""
        source = self.source(measure)
        conversion = Conversion(self.service, source, source.fields[measure.field], table)
        return sa.func.count(sa.case((conversion.gap, 1)))

    def column_currency(self, measure) -> str | None:
        if measure.agg not in CONVERTED_AGGS or not measure.field:
            return None
        source = self.source(measure)
        fld = source.fields.get(measure.field)
        if fld is None:
            return None
        if self.converts(measure):
            return self.registry.base_currency
        return fixed_currency(self.registry, source, fld)

    def explain(self, conn, measure, table, groups, where, condition) -> None:
        """Per group and currency of a converted measure's records: the rates applied (lowest,
        highest), and the amounts no rate converts. One GROUP BY, like the report's own."""
        conversion = Conversion(self.service, self.entity, self.entity.fields[measure.field],
                                table)
        no_value = conversion.gap
        statement = sa.select(
            *groups, conversion.currency.label("c_currency"),
            sa.func.count().label("c_records"),
            sa.func.min(conversion.rate).label("c_min"),
            sa.func.max(conversion.rate).label("c_max"),
            sa.func.min(conversion.day).label("c_first"),
            sa.func.max(conversion.day).label("c_last"),
            sa.func.count(sa.case((no_value, 1))).label("c_missing"),
            sa.func.sum(sa.case((no_value, conversion.amount))).label("c_missing_amount"),
        ).select_from(table).where(*where, conversion.amount.is_not(None))
        if condition is not None:
            statement = statement.where(condition)
        statement = statement.group_by(*groups, conversion.currency)
        for row in conn.execute(statement).mappings():
            group = [row[f"g_{i}"] for i in range(len(groups))]
            code = row["c_currency"]
            if row["c_missing"]:
                self._blocked.add((measure.name, tuple(group)))
                self.unconvertible.append({
                    "measure": measure.name, "group": group, "currency": code,
                    "records": row["c_missing"], "amount": number_text(row["c_missing_amount"], 2),
                    "reason": "no_currency" if code is None else "no_rate"})
            if code is not None and code != conversion.base and row["c_min"] is not None:
                self.rates.append({
                    "measure": measure.name, "group": group, "currency": code,
                    "rate_min": number_text(row["c_min"]), "rate_max": number_text(row["c_max"]),
                    "records": row["c_records"] - row["c_missing"],
                    "from": _day(row["c_first"]), "to": _day(row["c_last"])})

    def blocked(self, measure_name: str, group: list) -> bool:
        """Whether a cell's amount could not be fully converted (it is shown as no value)."""
        return (measure_name, tuple(group)) in self._blocked

    def block(self, measure_name: str, group: list) -> None:
        self._blocked.add((measure_name, tuple(group)))

    def summary(self, json_value) -> dict:
        """The report result's `currency` part (docs/reports.md)."""
        measures = {}
        for measure in self.report.measures.values():
            code = self.column_currency(measure)
            if code is not None or self.converts(measure):
                measures[measure.name] = {"currency": code, "converted": self.converts(measure)}
        fix = (lambda items: [{**item, "group": [json_value(v) for v in item["group"]]}
                              for item in items])
        return {"base": self.registry.base_currency, "measures": measures,
                "rates": fix(self.rates), "unconvertible": fix(self.unconvertible)}


def number_text(value, places: int | None = None) -> str | None:
    """A database number as exact text (rates as stored, amounts to the cent)."""
    if value is None:
        return None
    number = Decimal(str(value))
    if places is not None:
        return str(number.quantize(Decimal(1).scaleb(-places)))
    return format(number.normalize(), "f")


def _day(value) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, dt.date) else str(value)[:10]


# ------------------------------------------------------------------ maintaining rates

class ExchangeRates:
    """The exchange-rate table of a site: read by everyone signed in, written by admins
    (the API and the CLI check who asks; this class checks what is written)."""

    def __init__(self, registry: Registry, engine: sa.Engine, schema):
        self.registry = registry
        self.engine = engine
        self.table = schema.engine["exchange_rate"]

    @property
    def base(self) -> str:
        if self.registry.base_currency is None:
            raise BadRequest("this site has no base currency: set base_currency in app.yaml "
                             "before entering exchange rates")
        return self.registry.base_currency

    def list(self, currency: str | None = None, since: str | None = None,
             until: str | None = None, limit: int = 1000) -> list[dict]:
        """Rates for the base currency, newest day first (optionally one currency, a range)."""
        table, base = self.table, self.base
        statement = sa.select(table).where(table.c.base == base)
        if currency:
            statement = statement.where(table.c.currency == currency_code(currency, "currency"))
        if since:
            statement = statement.where(table.c.day >= parse_day(since, "since"))
        if until:
            statement = statement.where(table.c.day <= parse_day(until, "until"))
        statement = statement.order_by(table.c.day.desc(), table.c.currency).limit(limit)
        with self.engine.connect() as conn:
            return [self.as_json(row) for row in conn.execute(statement).mappings()]

    def rate_on(self, currency: str, day: dt.date) -> Decimal | None:
        """The rate that converts `currency` on `day` (1 for the base currency itself)."""
        code = currency_code(currency, "currency")
        if code == self.base:
            return ONE
        table = self.table
        statement = (sa.select(table.c.rate).where(table.c.base == self.base,
                                                   table.c.currency == code, table.c.day <= day)
                     .order_by(table.c.day.desc()).limit(1))
        with self.engine.connect() as conn:
            value = conn.execute(statement).scalar()
        return None if value is None else Decimal(str(value))

    def set_many(self, items: list[dict], user_id: int | None = None) -> list[dict]:
        """Write rates (one per currency and day; a later one replaces an earlier one), all or
        none: any bad item refuses the whole set, naming each (`<index>.<key>`)."""
        rows, errors = [], {}
        base = self.base
        for i, item in enumerate(items):
            prefix = f"{item['_line']}" if isinstance(item, dict) and "_line" in item else str(i)
            try:
                rows.append(parse_rate(item, base))
            except _BadItem as exc:
                for key, message in exc.fields.items():
                    errors[f"{prefix}.{key}"] = [message]
        if errors:
            raise ValidationFailed(f"{len(errors)} values are invalid; no rate was written",
                                   errors)
        if not rows:
            return []
        now = dt.datetime.now(UTC)
        table = self.table
        chosen = {(r["currency"], r["day"]): r for r in rows}  # the last of duplicates wins
        with write_transaction(self.engine) as conn:
            for (code, day), row in chosen.items():
                key = sa.and_(table.c.base == base, table.c.currency == code, table.c.day == day)
                values = {"rate": row["rate"], "updated_by": user_id, "updated_at": now}
                if conn.execute(table.update().where(key).values(**values)).rowcount == 0:
                    conn.execute(table.insert().values(base=base, currency=code, day=day,
                                                       **values))
        return [{"currency": c, "day": d.isoformat(), "rate": number_text(r["rate"]), "base": base}
                for (c, d), r in chosen.items()]

    def delete(self, currency: str, day: str) -> bool:
        """Remove one rate; return whether there was one."""
        code, when = currency_code(currency, "currency"), parse_day(day, "day")
        table = self.table
        with write_transaction(self.engine) as conn:
            return conn.execute(table.delete().where(
                table.c.base == self.base, table.c.currency == code,
                table.c.day == when)).rowcount > 0

    def import_file(self, path: Path, user_id: int | None = None) -> list[dict]:
        """Write the rates of a CSV or XLSX file with columns currency, day (or date), rate;
        errors are named by the file's line number, and then nothing is written."""
        from engine.records.transfer import ImportRefused, read_table
        try:
            header, rows = read_table(Path(path))
        except ImportRefused as exc:
            raise BadRequest(str(exc)) from None
        names = [h.strip().lower() for h in header]
        columns = {"currency": "currency", "day": "day", "date": "day", "rate": "rate"}
        unknown = [h for h in names if h not in columns]
        if unknown:
            raise BadRequest(f"column '{unknown[0]}' is not one of currency, day (or date), "
                             f"rate")
        missing = {"currency", "day", "rate"} - {columns[n] for n in names}
        if missing:
            raise BadRequest(f"the file has no column {', '.join(sorted(missing))}")
        items = []
        for line, cells in rows:
            item = {"_line": f"line {line}"}
            for name, cell in zip(names, cells):
                item[columns[name]] = cell
            items.append(item)
        return self.set_many(items, user_id)

    def as_json(self, row) -> dict:
        return {"currency": row["currency"], "day": _day(row["day"]),
                "rate": number_text(row["rate"]),
                "base": row["base"], "updated_at": row["updated_at"].astimezone(UTC).strftime(
                    "%Y-%m-%dT%H:%M:%SZ") if row["updated_at"] else None,
                "updated_by": row["updated_by"]}


class _BadItem(Exception):
    def __init__(self, fields: dict[str, str]):
        super().__init__(", ".join(fields))
        self.fields = fields


def parse_rate(item, base: str) -> dict:
    """One rate as written: {"currency", "day", "rate"}; every bad key is named."""
    if not isinstance(item, dict):
        raise _BadItem({"rate": "must be an object {currency, day, rate}"})
    errors, out = {}, {}
    try:
        out["currency"] = currency_code(item.get("currency"), "currency")
        if out["currency"] == base:
            errors["currency"] = f"is the base currency ({base}); its rate is always 1"
    except BadRequest as exc:
        errors["currency"] = exc.fields["currency"][0]
    try:
        out["day"] = parse_day(item.get("day"), "day")
    except BadRequest as exc:
        errors["day"] = exc.fields["day"][0]
    raw = item.get("rate")
    try:
        if isinstance(raw, bool) or raw is None or (isinstance(raw, str) and not raw.strip()):
            raise InvalidOperation
        rate = Decimal(str(raw).strip())
        if not rate.is_finite() or rate <= 0 or rate >= MAX_RATE:
            raise InvalidOperation
        if rate.as_tuple().exponent < -10:
            errors["rate"] = "must have at most 10 decimal places"
        out["rate"] = rate
    except InvalidOperation:
        errors["rate"] = "must be a number greater than 0"
    if errors:
        raise _BadItem(errors)
    return out


def currency_code(value, key: str) -> str:
    text = str(value).strip().upper() if isinstance(value, str) else None
    if text not in ISO_4217:
        hint = currency_hint(value) if isinstance(value, str) else ""
        raise BadRequest(f"{key}: '{value}' is not an ISO 4217 currency code",
                         {key: [f"must be an ISO 4217 currency code such as USD{hint}"]})
    return text


def parse_day(value, key: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise BadRequest(f"{key}: '{value}' is not a date (YYYY-MM-DD)",
                         {key: ["must be a date (YYYY-MM-DD)"]}) from None


def converted_metric(service, entity: Entity, field_name: str, agg: str, table, where: list):
    """A dashboard metric over amounts in several currencies, in the base currency: the
    aggregate as text to the cent (an average as a rounded number), or None while an amount
    has no rate (no value, never a total that leaves money out)."""
    conversion = Conversion(service, entity, entity.fields[field_name], table)
    function = {"sum": sa.func.sum, "avg": sa.func.avg, "min": sa.func.min,
                "max": sa.func.max}[agg]
    statement = sa.select(function(conversion.value), sa.func.count(sa.case((conversion.gap, 1)))) \
        .select_from(table).where(*where)
    with service.engine.connect() as conn:
        value, missing = conn.execute(statement).one()
    if missing:
        return None
    if value is None:
        return "0.00" if agg == "sum" else None
    if agg == "avg":
        return round(float(value), 6)
    return number_text(value, 2)
