"""Prometheus metrics of every process (prometheus_client), and how they are exposed.

App servers export them at `GET /metrics` (web/health.py), workers on `--metrics-port`.
Under gunicorn each worker process counts on its own: set PROMETHEUS_MULTIPROC_DIR to an
empty folder before starting (deploy/gunicorn.conf.py does) and /metrics adds them up.

What is counted: requests by route, method and status, with their latency; jobs by name and
outcome, with their duration; and, read when scraped, the queue's depth and the work waiting
in the database (due webhooks, unfinished ticks, imports and exports waiting, failed jobs).
"""

from __future__ import annotations

import os
from typing import Callable

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram,
                               generate_latest)
from prometheus_client.core import GaugeMetricFamily

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter("crm_http_requests", "HTTP requests answered",
                   ["route", "method", "status"])
REQUEST_SECONDS = Histogram("crm_http_request_duration_seconds", "Time to answer a request",
                            ["route", "method"],
                            buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
JOBS = Counter("crm_jobs", "Background jobs run, by outcome (done, retried, failed, refused, "
               "waiting for configuration)", ["job", "outcome"])
JOB_SECONDS = Histogram("crm_job_duration_seconds", "Time a background job ran", ["job"],
                        buckets=(.01, .05, .1, .5, 1, 5, 30, 120, 600, 3600))
WEBHOOK_ATTEMPTS = Counter("crm_webhook_attempts", "Webhook deliveries tried, by outcome",
                           ["outcome"])


class WorkCollector:
    """Gauges read when scraped: the queue's depth and the work waiting in the database."""

    def __init__(self, depth: Callable[[], dict[str, int]], waiting: Callable[[], dict[str, int]]):
        self._depth, self._waiting = depth, waiting

    def collect(self):
        yield self._gauge("crm_queue_depth", "Messages waiting in the job queue", "queue",
                          self._depth)
        yield self._gauge("crm_work_waiting", "Work waiting in the database, by kind", "kind",
                          self._waiting)

    @staticmethod
    def _gauge(name: str, documentation: str, label: str,
               read: Callable[[], dict[str, int]]) -> GaugeMetricFamily:
        gauge = GaugeMetricFamily(name, documentation, labels=[label])
        try:
            for key, value in read().items():
                gauge.add_metric([key], value)
        except Exception:  # noqa: BLE001 - a broker or database that is down: no samples
            pass
        return gauge


def exposition(collector: WorkCollector | None = None) -> tuple[bytes, str]:
    """The text Prometheus scrapes: this process's metrics, or (multi-process mode) every
    process's, and the gauges of `collector`."""
    from prometheus_client import REGISTRY
    if os.environ.get(MULTIPROCESS_ENV):
        from prometheus_client import multiprocess
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Forward(REGISTRY))
    if collector is not None:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Forward:
    """Collect another registry's metrics into this one (the default registry's counters
    plus this scrape's gauges, without registering the gauges globally)."""

    def __init__(self, registry):
        self.registry = registry

    def collect(self):
        return self.registry.collect()
