"""Sample data that is not records: a layer's seed/exchange_rates.csv and seed/mailbox/."""

from __future__ import annotations

import shutil

import pytest

from conftest import FIXTURES, World
from engine.records.currency import ExchangeRates
from engine.records.seedfiles import load_seed_files

RATES = "currency,day,rate\nUSD,2026-01-01,7.1\nEUR,2026-01-01,7.8\n"


@pytest.fixture
def site(tmp_path):
    folder = tmp_path / "site"
    shutil.copytree(FIXTURES / "sites" / "currency", folder)
    (folder / "seed" / "mailbox").mkdir(parents=True)
    (folder / "seed" / "exchange_rates.csv").write_text(RATES)
    shutil.copy(FIXTURES / "mail" / "contact.eml", folder / "seed" / "mailbox" / "contact.eml")
    return folder


def test_rates_load_once_and_mail_waits_for_a_mail_section(site, database_url):
    w = World(database_url, site=site)
    lines = list(load_seed_files(w.service))
    assert [line.rsplit("/", 1)[-1] for line in lines] == [
        "exchange_rates.csv: 2 exchange rates",
        "mailbox: skipped, the site has no mail: section in app.yaml"]
    rates = ExchangeRates(w.registry, w.engine, w.service.schema)
    assert {(r["currency"], str(r["rate"])) for r in rates.list()} == {("USD", "7.1"),
                                                                     ("EUR", "7.8")}
    # a second run, or rates an admin entered, are never mixed with the sample ones
    assert list(load_seed_files(w.service))[0].endswith("skipped, exchange rates exist already")
    w.engine.dispose()


def test_a_mailbox_is_imported_once_when_mail_is_configured(site, database_url):
    app = site / "app.yaml"
    app.write_text(app.read_text() + "mail:\n  addresses: ['@acme.example']\n")
    w = World(database_url, site=site)
    lines = list(load_seed_files(w.service))
    assert lines[1].endswith("contact.eml: 1 new, 0 already stored, 0 failed")
    assert list(load_seed_files(w.service))[1].endswith(
        "contact.eml: 0 new, 1 already stored, 0 failed")
    w.engine.dispose()
