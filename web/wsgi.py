"""The WSGI entry point for production servers: `gunicorn 'web.wsgi:app'`.

Reads the site from $CRM_SITE and the database from $CRM_DATABASE_URL (else app.yaml). Run the
background work (schedules, webhooks) in exactly one place: `crm run-automations` from cron,
or one `crm serve`; the database keeps it from running twice either way.
"""

from __future__ import annotations

import os
from pathlib import Path

import engine
from engine.storage.database import connect, database_url
from web import create_app

_site = Path(os.environ.get("CRM_SITE", "site"))
_registry = engine.load_registry(site=_site)
_engine = connect(database_url(None, _site, _registry.app.database if _registry.app else None))
app = create_app(_registry, _engine)
if os.environ.get("CRM_TRUST_PROXY"):  # behind a TLS proxy: trust its X-Forwarded-* headers
    from werkzeug.middleware.proxy_fix import ProxyFix
    hops = int(os.environ["CRM_TRUST_PROXY"])
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
