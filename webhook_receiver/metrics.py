"""Prometheus metrics for the receiver, in a registry of its own (one per app instance).

The server runs several worker processes, so per-process counters would show whichever worker
answered the scrape. With PROMETHEUS_MULTIPROC_DIR set (the `openphone-receiver` command sets it),
prometheus_client writes values to files in that folder and `/metrics` merges every worker's
files (only counters and histograms: nothing needs a dead worker's files removed). The retry-queue
depth comes from the database, at most one query per process every RECEIVER_QUEUE_DEPTH_CACHE_SECONDS,
so scraping stays cheap however large the queue or frequent the scrapes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from openphone_pipelines.store.retry_queue import queue_depth

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DELIVERY_OUTCOMES = ("stored", "duplicate", "bad_signature", "too_large", "db_unavailable", "error")


class QueueDepthCollector(Collector):
    """failed_webhook_queue rows by status, read at most once per `ttl_seconds` in this process
    (concurrent scrapes share one query); absent when the database cannot be read."""

    def __init__(self, engine_getter: Callable[[], Engine], ttl_seconds: float = 15.0) -> None:
        self._engine_getter = engine_getter
        self._ttl = ttl_seconds
        self._lock = threading.Lock()
        self._cached: dict[str, int] | None = None
        self._read_at = float("-inf")

    def depth(self) -> dict[str, int] | None:
        with self._lock:
            if time.monotonic() - self._read_at < self._ttl:
                return self._cached
            try:
                with self._engine_getter().connect() as conn:
                    self._cached = queue_depth(conn)
            except Exception as exc:  # a scrape must not fail because the database is down
                log.warning("retry queue depth unavailable: %s", type(exc).__name__)
                self._cached = None
            self._read_at = time.monotonic()
            return self._cached

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = self.depth()
        if depth is None:
            return
        family = GaugeMetricFamily(
            "openphone_receiver_retry_queue_depth",
            "Rows in failed_webhook_queue by status (read from the database at most once per cache period).",
            labels=["status"],
        )
        for status, count in sorted(depth.items()):
            family.add_metric([status], count)
        yield family

    def describe(self) -> list:
        return []  # do not query the database at registration time


class ReceiverMetrics:
    """The receiver's metric objects plus how to expose them (merged across the server's workers when
    `multiprocess_dir`, PROMETHEUS_MULTIPROC_DIR, is set)."""

    def __init__(self, engine_getter: Callable[[], Engine], multiprocess_dir: str | None = None,
                 queue_depth_ttl: float = 15.0) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.multiprocess = multiprocess_dir is not None
        self.deliveries = Counter(
            "openphone_receiver_deliveries_total",
            "Webhook deliveries by outcome (stored, duplicate, bad_signature, too_large, db_unavailable, error).",
            ["outcome"],
            registry=self.registry,
        )
        self.signature_failures = Counter(
            "openphone_receiver_signature_failures_total",
            "Deliveries refused with 401, by reason (missing, mismatch, stale, future, malformed).",
            ["reason"],
            registry=self.registry,
        )
        self.processing = Counter(
            "openphone_receiver_processing_total",
            "Processing outcomes of newly stored events (processed, probe, ignored, failed, deferred).",
            ["outcome"],
            registry=self.registry,
        )
        self.processing_failures = Counter(
            "openphone_receiver_processing_failures_total",
            "Stored events whose processing failed, by error class (transient, permanent).",
            ["error_class"],
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "openphone_receiver_request_duration_seconds",
            "Request latency by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._queue_collector = QueueDepthCollector(engine_getter, queue_depth_ttl)
        if not self.multiprocess:
            self.registry.register(self._queue_collector)
        for outcome in DELIVERY_OUTCOMES:  # export zeros so dashboards see every series
            self.deliveries.labels(outcome)

    def render(self) -> bytes:
        """Prometheus text exposition: this process, or every server worker in multiprocess mode."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        merged = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(merged)
        merged.register(self._queue_collector)
        return generate_latest(merged)
