"""Sample data that is not records, loaded with a layer's seed records by `crm seed` and
`crm demo`: exchange rates (`seed/exchange_rates.csv`, or .xlsx) and mail (`seed/mailbox/`:
`.mbox` and `.eml` files).

Like the record seeds it loads only into an empty place: rates only while the base currency
has none (an admin's own rates are never mixed with sample ones), mail by Message-ID, so a
second run stores nothing twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import sqlalchemy as sa

RATE_FILES = ("exchange_rates.csv", "exchange_rates.xlsx")
MAIL_SUFFIXES = (".mbox", ".eml")


def load_seed_files(service) -> Iterator[str]:
    """Load the rates and mailboxes of every layer's seed folder; yield a line per file."""
    registry = service.registry
    for folder in map(Path, registry.seed_folders):
        for name in RATE_FILES:
            if (folder / name).is_file():
                yield _load_rates(service, folder / name)
        mailbox = folder / "mailbox"
        if mailbox.is_dir():
            files = sorted(p for p in mailbox.iterdir() if p.suffix.lower() in MAIL_SUFFIXES)
            if files and registry.mail is None:
                yield f"{mailbox}: skipped, the site has no mail: section in app.yaml"
            elif files:
                from engine.mail.imports import import_files
                for result in import_files(service, files):
                    yield result.line()


def _load_rates(service, path: Path) -> str:
    from engine.records.currency import ExchangeRates
    if service.registry.base_currency is None:
        return f"{path}: skipped, no base_currency is set"
    rates = ExchangeRates(service.registry, service.engine, service.schema)
    table = rates.table
    with service.engine.connect() as conn:
        present = conn.execute(sa.select(table.c.day).where(table.c.base == rates.base)
                               .limit(1)).first()
    if present is not None:
        return f"{path}: skipped, exchange rates exist already"
    return f"{path}: {len(rates.import_file(path))} exchange rates"
