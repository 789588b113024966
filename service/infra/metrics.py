"""Every Prometheus metric the service exports, defined once; the code that observes a thing updates its metric.

Metrics live in prometheus_client's process-wide registry (one service process, one set of numbers). Label values
are always from small fixed sets (route templates, upstream names, pool names), never from request data.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# The `*_created` timestamp series double the output and no dashboard reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Latency buckets from sub-millisecond cache hits to multi-minute cutouts.
_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

HTTP_REQUESTS = Counter(
    "tess_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_HEADS_REFUSED = Counter(
    "tess_http_oversized_heads_total",
    "Requests answered 431 because their request line and headers exceeded max_header_bytes (python -m service).",
)
HTTP_LATENCY = Histogram(
    "tess_http_request_duration_seconds",
    "Time from request start to the last byte of the answer, by route template and method.",
    ["route", "method"],
    buckets=_BUCKETS_S,
)

CACHE_LOOKUPS = Counter(
    "tess_cache_lookups_total",
    "Cache lookups by result: hit (fresh entry served), miss (produced), stale (expired entry served on error).",
    ["result"],
)
CACHE_EVICTIONS = Counter("tess_cache_evictions_total", "Entries the size limit pushed out of the disk cache.")
CACHE_CORRUPT = Counter(
    "tess_cache_corrupt_total", "Cache entries dropped because their bytes no longer matched their checksum."
)
SHARED_TIER_ERRORS = Counter(
    "tess_cache_shared_errors_total",
    "Failed calls to the shared cache tier (Redis, object store), by what was asked; the replica then serves from "
    "its own tiers for a few seconds.",
    ["call"],
)
SHARED_TIER_READS = Counter(
    "tess_cache_shared_reads_total", "Local misses looked up in the shared cache tier, by outcome.", ["outcome"]
)
SHARED_FLIGHTS = Counter(
    "tess_shared_flights_total",
    "Cross-replica single-flight locks asked for, by outcome: held, timeout or unavailable (the replica then went "
    "ahead alone).",
    ["outcome"],
)
PRODUCTIONS = Counter(
    "tess_productions_total",
    "Answers made (assembled from MAST's data or rendered) by this process, rather than read from a cache.",
)
CACHE_VOLUME = Gauge("tess_cache_volume_bytes", "Estimated size of the disk cache on disk.")
CACHE_READS = Counter(
    "tess_cache_reads_total",
    "Reads of cached entries by tier: memory (small checked payloads, no disk access) or disk.",
    ["tier"],
)
CACHE_MEMORY_BYTES = Gauge("tess_cache_memory_bytes", "Bytes the in-memory tier of the cache holds (payloads).")

UPSTREAM_REQUESTS = Counter(
    "tess_upstream_requests_total",
    "Requests sent to MAST, by upstream, endpoint and outcome (ok, not_found, or the error status we answered).",
    ["upstream", "endpoint", "outcome"],
)
UPSTREAM_LATENCY = Histogram(
    "tess_upstream_request_duration_seconds",
    "Duration of one request to MAST (one attempt), by upstream and endpoint.",
    ["upstream", "endpoint"],
    buckets=_BUCKETS_S,
)
UPSTREAM_RETRIES = Counter(
    "tess_upstream_retries_total",
    "Attempts repeated after a retryable failure, by upstream and endpoint.",
    ["upstream", "endpoint"],
)
BREAKER_STATE = Gauge(
    "tess_upstream_breaker_state", "Circuit breaker per upstream: 0 closed, 1 half-open, 2 open.", ["upstream"]
)
BREAKER_REJECTIONS = Counter(
    "tess_upstream_breaker_rejections_total", "Requests answered 503 at once because a breaker was open.", ["upstream"]
)

POOL_QUEUE_DEPTH = Gauge("tess_pool_queue_depth", "Work waiting for a worker thread, by pool.", ["pool"])
POOL_IN_USE = Gauge("tess_pool_in_use", "Worker threads busy, by pool.", ["pool"])
POOL_SHED = Counter("tess_pool_shed_total", "Requests answered 503 because a pool's queue was full, by pool.", ["pool"])

JOBS = Gauge("tess_jobs", "Jobs the registry currently remembers, by state.", ["state"])
QUEUE_JOBS = Gauge(
    "tess_queue_jobs",
    "Jobs on the shared job queue (TESS_SERVICE_WORK_QUEUE), by state: queued, active, scheduled (waiting for a "
    "retry); -1 while the state Redis cannot be reached. Read from Redis every 2 s, so every replica and worker "
    "reports the same queue.",
    ["state"],
)
QUEUE_JOB_RUNS = Counter(
    "tess_queue_job_runs_total",
    "Queued jobs this worker ran, by function and outcome: done, failed (a problem the job answers with, e.g. "
    "TESScut's 4xx or 5xx), crashed (an unexpected error: the queue retries it).",
    ["function", "outcome"],
)
QUEUE_JOBS_RUNNING = Gauge("tess_queue_jobs_running", "Queued jobs this worker is running now.")
EDGE_TIER = Counter(
    "tess_edge_tier_total",
    "The edge tier (cacheable answers kept whole in memory by URL for their max-age): answers kept, and answers "
    "served from it (hit).",
    ["event"],
)
