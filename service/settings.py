"""Service configuration, read from environment variables prefixed ``TESS_SERVICE_``."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the service; each field is set by ``TESS_SERVICE_<FIELD NAME>``."""

    model_config = SettingsConfigDict(env_prefix="TESS_SERVICE_", extra="ignore")

    exomast_url: str = Field(
        "https://exo.mast.stsci.edu/api/v0.1/", description="Base URL of ExoMAST's API v0.1 (DV products)."
    )
    mast_url: str = Field("https://mast.stsci.edu", description="Base URL of MAST (TESScut and the TIC catalog).")
    skybot_url: str = Field(
        "https://ssp.imcce.fr/webservices/skybot/api/conesearch.php",
        description="URL of IMCCE's SkyBoT cone search (known solar-system bodies near a position at an epoch).",
    )
    host: str = Field("127.0.0.1", description="Interface `python -m service` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `python -m service` listens on.")

    cache_dir: Path = Field(Path("var/cache"), description="Directory of the on-disk cache.")
    cache_size_limit_mb: int = Field(2048, ge=16, description="Size limit of the disk cache, in MiB.")
    ttl_tce_list_s: int = Field(3600, ge=0, description="Freshness of TCE lists, in seconds.")
    ttl_dv_s: int = Field(7 * 86400, ge=0, description="Freshness of DV headers and DV time series, in seconds.")
    stale_if_error_s: int = Field(
        7 * 86400,
        ge=0,
        description="How long past its freshness a cached answer may still be served (marked stale) when MAST "
        "fails; 0 disables. Entries are kept that long.",
    )
    cache_write_pause_s: float = Field(
        0.0,
        ge=0,
        description="Test hook for crash tests: stall every file copy into the cache this long after its first "
        "4 MiB. 0 (off) in production.",
    )
    hot_cache_mb: int = Field(
        64,
        ge=0,
        description="Memory for the cache's in-memory tier, in MiB: small checked answers and decoded data served "
        "without touching the disk. 0 disables it.",
    )
    hot_entry_max_kb: int = Field(
        1024, ge=0, description="Largest answer the in-memory cache tier holds, in KiB. 0 disables the tier."
    )
    edge_cache_mb: int = Field(
        64,
        ge=0,
        description="Memory for the edge tier, in MiB: whole answers kept by URL for as long as their Cache-Control "
        "lets any cache keep them, and served without routing, planning or cache lookups. 0 disables it.",
    )
    edge_entry_max_kb: int = Field(
        8192, ge=0, description="Largest answer the edge tier keeps, in KiB (movies are typically 1 to 5 MiB)."
    )
    cache_redis_url: str | None = Field(
        None,
        description="Redis of the shared cache tier (`redis://host:6379/0`), shared by replicas: answers' metadata "
        "and small bodies, behind each replica's memory and disk tiers. Unset (the default): this process's tiers "
        "only. Give it its own instance with `maxmemory-policy allkeys-lru` and no persistence.",
    )
    blob_store_url: str | None = Field(
        None,
        description="Object store of the shared cache tier's large bodies (cutouts, movies, big JSON): "
        "`s3://bucket/prefix` (with AWS_ENDPOINT_URL, an `http://` one allowed, AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, AWS_REGION) or `file:///directory`. Needs cache_redis_url. Unset: large bodies "
        "stay on each replica's disk.",
    )
    state_redis_url: str | None = Field(
        None,
        description="Redis for what replicas coordinate (`redis://host:6380/0`): TESScut's limits counted across "
        "every process, and the locks that let one replica make an answer the others wait for. Give it its own "
        "instance with `maxmemory-policy noeviction` and `appendonly yes`. When it cannot be reached, TESScut calls "
        "answer 503 (retryable) and cached answers are still served. Unset: each process counts alone.",
    )
    work_queue: bool = Field(
        False,
        description="Download cutouts in `python -m service.worker` processes, as jobs on a queue in the state "
        "Redis, rather than in this process: then only the workers call TESScut for cutouts, and a job survives "
        "the replica that asked for it, a killed worker (re-run by another) and a restart of the state Redis. "
        "Needs state_redis_url and blob_store_url (the workers hand cutouts over through the object store).",
    )
    worker_concurrency: int = Field(
        5,
        ge=1,
        le=10,
        description="Cutout jobs one worker runs at once. Keep the sum over all workers at most 10, TESScut's limit "
        "of requests in flight per user (two workers of 5 by default).",
    )
    worker_metrics_port: int = Field(
        9101, ge=0, le=65535, description="Port of a worker's /metrics (Prometheus text format); 0: none."
    )
    shared_body_max_kb: int = Field(
        256, ge=1, description="Largest body the shared tier keeps in Redis, in KiB; larger go to the object store."
    )

    upstream_connect_timeout_s: float = Field(5.0, gt=0, description="Connect timeout for MAST calls, seconds.")
    upstream_read_timeout_s: float = Field(60.0, gt=0, description="Read timeout for MAST calls, seconds.")
    upstream_pool_timeout_s: float = Field(30.0, gt=0, description="Wait for a free connection to MAST, seconds.")
    upstream_total_timeout_s: float = Field(300.0, gt=0, description="Whole exchange with MAST (JSON APIs), seconds.")
    upstream_max_connections: int = Field(20, ge=1, description="Open connections to each MAST host at most.")
    upstream_max_body_mb: int = Field(512, ge=1, description="Largest upstream JSON body accepted, in MiB.")
    upstream_max_attempts: int = Field(
        3, ge=1, le=10, description="Attempts per ExoMAST/TIC catalog call on transient failures (503, timeouts...)."
    )
    upstream_backoff_s: float = Field(0.5, gt=0, description="Base of the exponential backoff (ExoMAST, TIC), s.")
    upstream_deadline_s: float = Field(
        300.0, gt=0, description="Overall time for one ExoMAST/TIC catalog call, retries included, seconds."
    )
    breaker_failure_threshold: int = Field(
        5, ge=1, description="Failed attempts in a row after which an upstream's circuit breaker opens."
    )
    breaker_reset_s: float = Field(
        30.0, gt=0, description="How long an open breaker refuses calls before letting one probe through, s."
    )

    ttl_sectors_s: int = Field(86400, ge=0, description="Freshness of sector lists (new sectors appear), in seconds.")
    ttl_cutout_s: int = Field(30 * 86400, ge=0, description="Freshness of FFI cutouts, in seconds.")

    tesscut_max_in_flight: int = Field(10, ge=1, le=10, description="TESScut requests in flight at most (MAST: 10).")
    tesscut_starts_per_s: float = Field(5.0, gt=0, le=5, description="TESScut requests started per second at most.")
    tesscut_read_timeout_s: float = Field(600.0, gt=0, description="Read timeout of one TESScut request, seconds.")
    tesscut_deadline_s: float = Field(1800.0, gt=0, description="Overall time for one cutout, retries included.")
    tesscut_max_attempts: int = Field(
        4, ge=1, le=10, description="Attempts per TESScut call on transient failures (503/504, timeouts, drops)."
    )
    tesscut_backoff_s: float = Field(1.0, gt=0, description="Base of the exponential backoff between attempts, s.")
    tesscut_mirror_wait_s: float = Field(
        540.0,
        gt=0,
        description="How long the TESScut mirror holds a cold cutout request before a 504 (the job goes on), s.",
    )

    job_wait_default_s: float = Field(60.0, ge=0, description="How long a cutout request waits before 202.")
    job_keep_s: int = Field(3600, ge=60, description="How long finished jobs stay visible at /jobs/{id}.")
    cutout_queue_max: int = Field(
        20, ge=0, description="Cutouts that may wait for a TESScut slot; past them new cutouts get 503 + Retry-After."
    )
    render_queue_max: int = Field(
        32, ge=0, description="Renders that may wait for a render thread; past them new renders get 503 + Retry-After."
    )
    shutdown_grace_s: int = Field(
        8, ge=0, description="On SIGTERM, how long `python -m service` lets requests in flight finish, seconds."
    )
    max_header_bytes: int = Field(
        64 * 1024,
        ge=1024,
        description="Largest request line plus headers `python -m service` reads, bytes; past it, 431 and close.",
    )

    render_threads: int = Field(2, ge=1, description="Worker threads that render PNGs and movies.")
    movie_max_frames: int = Field(2000, ge=1, description="Most frames one movie may hold.")
    movie_max_output_mb: int = Field(
        256, ge=1, description="Largest movie (frames × pixels) one request may make, MiB."
    )
    diagnosis_max_window_days: float = Field(
        2.0,
        gt=0,
        le=10,
        description="Longest window a diagnosis or a pixels plot looks at, days (its reference frames are read too).",
    )

    cpu_threads: int = Field(2, ge=1, description="Worker threads for parsing and serialising (CPU work).")
    io_threads: int = Field(8, ge=1, description="Worker threads for disk-cache I/O.")

    log_format: Literal["json", "text"] = Field(
        "json", description="`python -m service` logs one JSON object per line (`json`) or plain text (`text`)."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Least severe level logged.")
    access_log: bool = Field(True, description="Log one line per request: method, route, status, duration, bytes.")

    @field_validator("exomast_url")
    @classmethod
    def _with_trailing_slash(cls, url: str) -> str:
        # Relative paths are joined onto this base, which only works when it ends in a slash.
        return url if url.endswith("/") else url + "/"

    @field_validator("mast_url")
    @classmethod
    def _without_trailing_slash(cls, url: str) -> str:
        return url.rstrip("/")

    @field_validator("blob_store_url")
    @classmethod
    def _blob_store_scheme(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("s3://", "file:///")):
            raise ValueError("must be s3://bucket[/prefix] or file:///directory")
        return url

    @model_validator(mode="after")
    def _blob_store_needs_redis(self) -> "Settings":
        if self.blob_store_url and not self.cache_redis_url:
            raise ValueError("blob_store_url needs cache_redis_url: the shared entries' metadata live in Redis")
        if self.work_queue and not (self.state_redis_url and self.blob_store_url):
            raise ValueError(
                "work_queue needs state_redis_url (the queue) and blob_store_url (where workers leave cutouts)"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()
