"""Prometheus metrics: what operators watch. Served at /metrics (portal/health.py), never to the public.

Call sites record facts; this module owns the names:
- `record_check(decisions, purpose, seconds)` once per answered check request (the decision engine);
- `record_upload_rows(n)` after each committed chunk of a bulk upload;
- queue depth is read from the broker when Prometheus scrapes, not counted.

Several processes (gunicorn workers, Celery workers) each count their own; with the environment
variable PROMETHEUS_MULTIPROC_DIR set to a shared, emptied-at-start directory, prometheus_client
adds them up at scrape time (README: "Running Kyoka on more than one machine").
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Iterator

from django.conf import settings
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

CHECK_ITEMS = Counter(
    "kyoka_check_items", "Items answered by checks, by decision and purpose.", ["decision", "purpose"]
)
CHECK_REQUESTS = Counter("kyoka_check_requests", "Check requests answered, by purpose.", ["purpose"])
CHECK_SECONDS = Histogram(
    "kyoka_check_seconds", "Time to answer one check request (all its items).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
UPLOAD_ROWS = Counter("kyoka_upload_rows", "Bulk-upload manifest rows committed (rate() gives rows per second).")


def record_check(decisions: Tally[str], purpose: str, seconds: float) -> None:
    """Count one answered check: its items by decision, and how long the whole request took."""
    CHECK_REQUESTS.labels(purpose=purpose).inc()
    for decision, count in decisions.items():
        if count:
            CHECK_ITEMS.labels(decision=decision, purpose=purpose).inc(count)
    CHECK_SECONDS.observe(seconds)


def record_upload_rows(n: int) -> None:
    if n > 0:
        UPLOAD_ROWS.inc(n)


class QueueDepthCollector(Collector):
    """Messages waiting in each Celery queue on a Redis broker, read at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("kyoka_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"])
        broker = settings.CELERY_BROKER_URL
        if broker.startswith(("redis://", "rediss://")):
            import redis

            try:
                client = redis.Redis.from_url(broker, socket_timeout=2, socket_connect_timeout=2)
                for queue in settings.KYOKA_METRICS_QUEUES:
                    gauge.add_metric([queue], client.llen(queue))
            except redis.RedisError:
                logger.warning("Queue depth unavailable: the broker does not answer")
        yield gauge


def render_metrics() -> tuple[bytes, str]:
    """The exposition text and its content type: this process's counters, or every process's."""
    if settings.KYOKA_METRICS_MULTIPROCESS:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        for collector in (CHECK_ITEMS, CHECK_REQUESTS, CHECK_SECONDS, UPLOAD_ROWS):
            registry.register(collector)
    registry.register(QueueDepthCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST
