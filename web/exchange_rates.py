"""The exchange-rate API (docs/reports.md "Money in several currencies"): every signed-in user
reads the rates reports use; only admins write them. Rules live in ExchangeRates."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Flask, g, jsonify, request

from engine.errors import BadRequest, Forbidden, NotFound, RecordError
from engine.records.currency import ExchangeRates, currency_code, number_text, parse_day
from web.api import record_error

rates_api = Blueprint("exchange_rates", __name__, url_prefix="/api/v1/exchange-rates")


def register_exchange_rates(app: Flask) -> None:
    app.register_blueprint(rates_api)


def _rates() -> ExchangeRates:
    from web.common import site
    current = site()
    return ExchangeRates(current.registry, current.engine, current.service.schema)


def _admin_only() -> None:
    if not g.caller.is_admin:
        raise Forbidden("only admins may change exchange rates")


rates_api.register_error_handler(RecordError, record_error)  # the API's error shape


@rates_api.get("")
def list_rates():
    rates = _rates()
    raw = request.args.get("limit", "1000")
    if not raw.isdigit() or not 1 <= int(raw) <= 10000:
        raise BadRequest("limit: must be between 1 and 10000",
                         {"limit": ["must be between 1 and 10000"]})
    data = rates.list(request.args.get("currency"), request.args.get("since"),
                      request.args.get("until"), int(raw))
    return jsonify({"base": rates.base, "data": data})


@rates_api.get("/<currency>")
def rate_on(currency):
    rates = _rates()
    day = parse_day(request.args["on"], "on") if request.args.get("on") else \
        dt.datetime.now(dt.timezone.utc).date()
    rate = rates.rate_on(currency, day)
    code = currency_code(currency, "currency")
    if rate is None:
        raise NotFound(f"no {code} rate on or before {day.isoformat()}")
    return jsonify({"data": {"currency": code, "day": day.isoformat(), "rate": number_text(rate),
                             "base": rates.base}})


@rates_api.put("")
def put_rates():
    from web.api import body
    _admin_only()
    data = body().get("data")
    if not isinstance(data, list):
        raise BadRequest("send {\"data\": [{\"currency\", \"day\", \"rate\"}...]}",
                         {"data": ["must be a list of rates"]})
    return jsonify({"data": _rates().set_many(data, g.caller.user_id)})


@rates_api.delete("/<currency>/<day>")
def delete_rate(currency, day):
    _admin_only()
    if not _rates().delete(currency, day):
        raise NotFound(f"no {currency.upper()} rate on {day}")
    return "", 204


def currency_notes(summary: dict | None, locale: str) -> list[dict]:
    """A report's currency part as lines for a person: the base currency, each currency's
    rates (per group when grouped), and every amount no rate converts, as a warning."""
    from web.i18n import t
    if not summary or not any(m["converted"] for m in summary["measures"].values()):
        return []
    notes = [{"text": t("report_base_currency", locale, code=summary["base"]), "warn": False}]
    seen = set()
    for item in summary["rates"] + summary["unconvertible"]:
        warn = "reason" in item
        key = (warn, tuple(map(str, item["group"])), item["currency"])
        if key in seen:  # measures over the same field repeat the same rates
            continue
        seen.add(key)
        group = " / ".join("—" if v is None else str(v) for v in item["group"])
        prefix = f"{group}: " if group else ""
        if warn:
            text = t("report_no_rate" if item["reason"] == "no_rate" else "report_no_currency",
                     locale, currency=item["currency"], amount=item["amount"],
                     records=item["records"])
        else:
            rate = item["rate_min"] if item["rate_min"] == item["rate_max"] else \
                f"{item['rate_min']}–{item['rate_max']}"
            text = t("report_rate_used", locale, currency=item["currency"], rate=rate,
                     base=summary["base"], records=item["records"])
        notes.append({"text": prefix + text, "warn": warn})
    return notes
