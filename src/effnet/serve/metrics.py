"""The server's Prometheus metrics, in a registry of its own (two servers in one process do not mix)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds: from well under a millisecond (a rejection) to the default 2 s deadline and past it.
_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("effnet_requests", "HTTP requests answered, by route and status",
                                ("route", "status"), registry=r)
        self.dropped = Counter("effnet_dropped_requests", "queued requests dropped unrun because the client left",
                               registry=r)
        self.queue_wait = Histogram("effnet_queue_wait_seconds", "time a request waited for the model",
                                    buckets=_LATENCY, registry=r)
        self.decode = Histogram("effnet_decode_seconds", "decoding and preprocessing one request's images",
                                buckets=_LATENCY, registry=r)
        self.inference = Histogram("effnet_inference_seconds", "one batch through the model", buckets=_LATENCY,
                                   registry=r)
        self.total = Histogram("effnet_request_seconds", "a request from arrival to answer", buckets=_LATENCY,
                               registry=r)
        self.batch_size = Histogram("effnet_batch_size", "images per batch run by the model",
                                    buckets=(1, 2, 4, 8, 16, 32, 64), registry=r)
        self.queue_depth = Gauge("effnet_queue_depth", "requests waiting for the model", registry=r)
        self.ready = Gauge("effnet_model_ready", "1 once the model is loaded and warmed up, 0 while draining",
                           registry=r)

    def text(self) -> bytes:
        return generate_latest(self.registry)
