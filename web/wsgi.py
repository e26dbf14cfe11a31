"""The WSGI entry point for production servers: `gunicorn 'web.wsgi:app'`.

Reads the site from $CRM_SITE and the database from $CRM_DATABASE_URL (else app.yaml). With
$CRM_BROKER_URL set, background work goes to the job queue for `crm worker` processes (and
`crm scheduler` asks for due work); without it, each server process runs the jobs itself
(engine/runtime/embedded.py), which is right for one machine: every job claims its work in the
database, so several processes never do it twice. With CRM_ENV=production, a missing
CRM_SECRET_KEY stops the start with a message saying so. See docs/deploy.md.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path

import engine
from engine.runtime.embedded import start_background
from engine.runtime.logs import configure_logging
from engine.storage.database import connect, database_url
from web import create_app

if os.environ.get("CRM_CONFIGURE_LOGGING", "1") != "0":
    configure_logging()
_site = Path(os.environ.get("CRM_SITE", "site"))
_registry = engine.load_registry(site=_site)
_engine = connect(database_url(None, _site, _registry.app.database if _registry.app else None))
app = create_app(_registry, _engine)
_background = start_background(app.extensions["crm_runtime"])
atexit.register(_background.stop)
if os.environ.get("CRM_TRUST_PROXY"):  # behind a TLS proxy: trust its X-Forwarded-* headers
    from werkzeug.middleware.proxy_fix import ProxyFix
    hops = int(os.environ["CRM_TRUST_PROXY"])
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
