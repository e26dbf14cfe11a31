"""gunicorn settings for the app servers (docs/deploy.md): `gunicorn -c deploy/gunicorn.conf.py`.

Every value can be overridden from the environment ($CRM_BIND, $CRM_WEB_WORKERS,
$CRM_WEB_THREADS). Prometheus counts of all worker processes are added up through
$PROMETHEUS_MULTIPROC_DIR (an empty folder, made here when unset), so /metrics shows the
whole server, not the one process that answered the scrape.
"""

import os
import tempfile

wsgi_app = "web.wsgi:app"
bind = os.environ.get("CRM_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("CRM_WEB_WORKERS", "4"))
threads = int(os.environ.get("CRM_WEB_THREADS", "4"))
worker_class = "gthread"
timeout = 120
graceful_timeout = 30  # SIGTERM: requests in flight get this long to finish
max_requests = 5000  # recycle workers now and then; no background work is lost by it
max_requests_jitter = 500
accesslog = None  # the app writes its own access log (logger crm.access, with request ids)
preload_app = False  # each worker builds its app (and, without a broker, its job threads)

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="crm-metrics-")


def child_exit(server, worker):
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)
