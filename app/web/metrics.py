"""Prometheus metrics, one CollectorRegistry per application (tests build many apps).

Other parts call the small functions below with their app; nothing here imports them.
"""

from __future__ import annotations

import contextlib
from bisect import bisect_left
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class RequestStats(Collector):
    """Request counts and latencies by route, kept in plain dicts (this runs on every
    request: a bisect and three integer updates) and turned into Prometheus families
    only when /metrics is scraped."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, int], int] = {}
        self.buckets: dict[tuple[str, str], list[int]] = {}
        self.sums: dict[tuple[str, str], float] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in _METHODS:
            method = "OTHER"  # any token is a method: keep the label set bounded
        key = (method, route, status)
        self.counts[key] = self.counts.get(key, 0) + 1
        pair = (method, route)
        buckets = self.buckets.get(pair)
        if buckets is None:
            buckets = self.buckets[pair] = [0] * (len(_LATENCY) + 1)
        buckets[bisect_left(_LATENCY, seconds)] += 1
        self.sums[pair] = self.sums.get(pair, 0.0) + seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "githost_http_requests", "HTTP requests answered", labels=["method", "route", "status"]
        )
        for (method, route, status), count in list(self.counts.items()):
            requests.add_metric([method, route, str(status)], count)
        yield requests
        latency = HistogramMetricFamily(
            "githost_http_request_duration_seconds",
            "HTTP request latency",
            labels=["method", "route"],
        )
        for pair, buckets in list(self.buckets.items()):
            running, cumulative = 0, []
            for bound, count in zip((*map(str, _LATENCY), "+Inf"), buckets, strict=True):
                running += count
                cumulative.append((bound, running))
            latency.add_metric(list(pair), cumulative, self.sums[pair])
        yield latency


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.http = RequestStats()
        r.register(self.http)
        self.in_flight_count = 0  # a plain int on the hot path, read when scraped
        self.in_flight = Gauge(
            "githost_http_requests_in_flight", "requests being handled", registry=r
        )
        self.in_flight.set_function(lambda: self.in_flight_count)
        self.git_ops = Counter(
            "githost_git_operations",
            "git processes run for Smart HTTP",
            ["service", "result"],
            registry=r,
        )
        self.git_seconds = Histogram(
            "githost_git_operation_duration_seconds",
            "git operation duration",
            ["service"],
            buckets=_LATENCY,
            registry=r,
        )
        self.git_bytes = Counter(
            "githost_git_bytes",
            "bytes through git operations",
            ["service", "direction"],
            registry=r,
        )
        self.git_active = Gauge("githost_git_active", "git operations running", registry=r)
        self.git_queued = Gauge(
            "githost_git_queued", "git operations waiting for a slot", registry=r
        )
        self.git_refused = Counter(
            "githost_git_admission_refused", "git operations refused with 503", registry=r
        )
        self.websockets = Gauge(
            "githost_websocket_connections", "open WebSocket connections", registry=r
        )
        self.rate_refused = Counter(
            "githost_ratelimit_refused", "requests refused with 429", ["kind"], registry=r
        )
        self.rate_backend_errors = Counter(
            "githost_ratelimit_backend_errors", "rate-limit backend (Redis) failures", registry=r
        )


METRICS = web.AppKey("metrics", Metrics)


def of(app: web.Application) -> Metrics:
    return app[METRICS]


def websocket_opened(app: web.Application) -> None:
    """Call when a WebSocket is established (the events endpoint)."""
    app[METRICS].websockets.inc()


def websocket_closed(app: web.Application) -> None:
    app[METRICS].websockets.dec()


@contextlib.contextmanager
def websocket_connection(app: web.Application) -> Iterator[None]:
    """`with websocket_connection(request.app): ...` around the life of one socket."""
    websocket_opened(app)
    try:
        yield
    finally:
        websocket_closed(app)
