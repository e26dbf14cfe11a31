"""Concurrent writers on PostgreSQL: every attempt commits or conflicts; nothing is lost."""

import threading

import pytest
import sqlalchemy as sa

from conftest import World
from engine.errors import Conflict


@pytest.fixture
def pg_world(postgres_database):
    world = World(postgres_database)
    yield world
    world.engine.dispose()


def test_read_modify_write_from_many_threads(pg_world):
    world = pg_world
    admin = world.user("admin1", "admin")
    record = world.service.create(admin, "account", {"name": "Counter", "employees": 0})
    outcomes = []
    lock = threading.Lock()

    def worker():
        for _ in range(10):
            current = world.service.get(admin, "account", record["id"])
            try:
                world.service.update(admin, "account", record["id"],
                                     {"employees": current["employees"] + 1},
                                     current["version"])
                result = "committed"
            except Conflict:
                result = "conflict"
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    committed = outcomes.count("committed")
    assert len(outcomes) == 60 and committed >= 1
    final = world.service.get(admin, "account", record["id"])
    assert final["employees"] == committed  # no increment lost
    assert final["version"] == committed + 1
    history, _ = world.service.history(admin, "account", record["id"], limit=500)
    updates = [h for h in history if h["action"] == "update"]
    assert len(updates) == committed
    values = sorted(h["changes"]["employees"][1] for h in updates)
    assert values == list(range(1, committed + 1))  # each committed step audited once


def test_autonumbers_are_unique_under_concurrency(pg_world):
    world = pg_world
    admin = world.user("admin1", "admin")
    account = world.service.create(admin, "account", {"name": "A"})
    numbers, errors = [], []

    def worker():
        for _ in range(8):
            try:
                deal = world.service.create(admin, "deal", {"title": "D",
                                                            "account": account["id"]})
                numbers.append(deal["number"])
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(numbers) == 40 and len(set(numbers)) == 40
    assert sorted(int(n.rsplit("-", 1)[1]) for n in numbers) == list(range(1, 41))
    assert world.service.get(admin, "account", account["id"])["open_deals"] == 40
