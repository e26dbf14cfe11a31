"""The PostgreSQL half of the suite: CI sets CRM_TEST_POSTGRES_URL and it must be reachable."""

import sqlalchemy as sa


def test_each_test_gets_its_own_database(postgres_database):
    db = sa.create_engine(postgres_database)
    try:
        with db.begin() as conn:
            conn.execute(sa.text('CREATE TABLE "order" ("group" integer)'))
            conn.execute(sa.text('INSERT INTO "order" VALUES (1)'))
            assert conn.execute(sa.text('SELECT count(*) FROM "order"')).scalar() == 1
            assert conn.execute(sa.text("SELECT current_database()")).scalar() \
                == sa.engine.make_url(postgres_database).database
    finally:
        db.dispose()
