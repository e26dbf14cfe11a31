"""Operations endpoints and per-request bookkeeping: /healthz, /readyz, /metrics, the access
log and the request id.

- `GET /healthz`: the process answers (liveness; no database, no sign-in).
- `GET /readyz`: the database answers, the job queue answers, and this process serves the
  configuration applied last (engine/runtime/context.py); 503 with the failing checks named
  otherwise, so a load balancer sends no traffic to it.
- `GET /metrics`: Prometheus text (engine/runtime/metrics.py); with $CRM_METRICS_TOKEN set,
  only for `Authorization: Bearer <that token>`.
- Every request gets an id (the caller's `X-Request-ID` when it is a sane one, else a new
  one), returned in `X-Request-ID` and written in its access-log line (logger "crm.access").
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
import uuid

import sqlalchemy as sa
from flask import Flask, Response, g, jsonify, request

from engine.runtime import metrics

access_log = logging.getLogger("crm.access")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
METRICS_TOKEN_ENV = "CRM_METRICS_TOKEN"
QUIET_PATHS = ("/healthz", "/readyz", "/metrics")  # probes: counted, not logged


def register_health(app: Flask) -> None:
    app.before_request(_begin)
    app.after_request(_end)
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/readyz", "readyz", readyz)
    app.add_url_rule("/metrics", "metrics", metrics_page)


def _begin():
    g.request_started = time.perf_counter()
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
    return None


def _end(response):
    started = g.get("request_started")
    seconds = time.perf_counter() - started if started is not None else 0.0
    route = request.url_rule.rule if request.url_rule is not None else "(unmatched)"
    metrics.REQUESTS.labels(route, request.method, str(response.status_code)).inc()
    metrics.REQUEST_SECONDS.labels(route, request.method).observe(seconds)
    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers["X-Request-ID"] = request_id
    if request.path not in QUIET_PATHS:
        caller = g.get("caller")
        fields = {"request_id": request_id, "method": request.method, "path": request.path,
                  "route": route, "status": response.status_code,
                  "duration_ms": round(seconds * 1000, 1), "remote_addr": request.remote_addr,
                  "user_id": getattr(caller, "user_id", None),
                  "bytes": response.calculate_content_length()}
        access_log.info("%s %s %s %.1f ms id=%s user=%s", request.method, request.full_path
                        if request.query_string else request.path, response.status_code,
                        seconds * 1000, request_id, fields["user_id"] or "-", extra=fields)
    return response


def healthz():
    return jsonify(status="ok")


def readyz():
    from flask import current_app
    runtime = current_app.extensions["crm_runtime"]
    checks, problems = {}, []
    try:
        with runtime.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - what fails is what the probe reports
        checks["database"] = "failed"
        problems.append(f"database: {type(exc).__name__}: {exc}".splitlines()[0][:300])
    ping = getattr(runtime.queue, "ping", None)
    if ping is None:
        checks["queue"] = "none"  # no queue in this process: work waits for a worker's sweep
    else:
        try:
            ping()
            checks["queue"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["queue"] = "failed"
            problems.append(f"queue: {type(exc).__name__}: {exc}".splitlines()[0][:300])
    if checks["database"] == "ok":
        runtime.refresh(force=True)  # a probe asks rarely: look at the applied version now
    configuration = runtime.problems() if checks["database"] == "ok" else []
    checks["configuration"] = "failed" if configuration else (
        "ok" if checks["database"] == "ok" else "unknown")
    problems += configuration
    body = {"status": "ready" if not problems else "not ready", "checks": checks,
            "configuration_version": runtime.version, "problems": problems}
    return jsonify(body), 200 if not problems else 503


def metrics_page():
    from flask import current_app
    token = os.environ.get(METRICS_TOKEN_ENV)
    if token:
        header = request.headers.get("Authorization", "")
        given = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            return Response("metrics need Authorization: Bearer <CRM_METRICS_TOKEN>\n", 401,
                            {"WWW-Authenticate": "Bearer", "Content-Type": "text/plain"})
    runtime = current_app.extensions["crm_runtime"]
    from engine.runtime.metrics import WorkCollector
    from engine.runtime.status import waiting_work
    depth = getattr(runtime.queue, "depth", None)
    collector = WorkCollector(depth or (lambda: {}), lambda: waiting_work(runtime.service))
    body, content_type = metrics.exposition(collector)
    return Response(body, 200, {"Content-Type": content_type})
