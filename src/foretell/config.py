"""Settings, read once at startup (CLI flags over FORETELL_* environment) and passed down."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# What a browser sends in Origin: a scheme, a host and maybe a port; no path, no slash.
_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s?#@]+")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FORETELL_", frozen=True)

    repository: Path = Field(Path("examples/models"), description="root of owner/name/version/")
    watch_repository: bool = Field(
        True,
        description="serve version folders added to the repository while running, and drain "
        "and stop those removed (SIGHUP rereads it either way)",
    )
    # NoDecode: FORETELL_DEFAULT_MODEL is a name or a comma-separated list of names, not JSON.
    default_model: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="owner/name of the models GPUX's POST /predict runs, each request on the one "
        "whose inputs it names; default: the only model",
    )
    # NoDecode: FORETELL_CORS_ORIGINS is a comma-separated list, as FORETELL_DEFAULT_MODEL.
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="origins (scheme://host[:port]) whose pages may call this API from a "
        "browser (CORS), or * for any; default none: no CORS headers at all",
    )
    data_dir: Path = Field(Path(".foretell"), description="where the embedded database lives")
    db: str | None = Field(None, description="SQLAlchemy URL; default SQLite in data_dir")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    # Off unless asked for: grpc.aio would otherwise open a second port on every server, and
    # two servers on one machine (tests, a second checkout) would both claim the same default.
    grpc_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="port of OIP v2 over gRPC (KServe's GRPCInferenceService, tritonclient.grpc) "
        "on the same host; Triton's is 8001; default: no gRPC",
    )
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_body_bytes_in_flight: int | None = Field(
        None,
        ge=1024,
        description="request body bytes all unfinished requests may hold at once (503 past "
        "it); default 8 x max_body_bytes",
    )
    # The connection's limits (api.connection), before a request reaches authentication: what
    # an unauthenticated client can make the server hold, and for how long.
    max_head_bytes: int = Field(
        64 * 1024,
        ge=1024,
        description="bytes a request line and its headers may take (431 past it), as h11's default",
    )
    header_timeout_s: float = Field(
        10.0, gt=0, description="time a request line and its headers may take to arrive (408)"
    )
    body_timeout_s: float = Field(
        30.0, gt=0, description="time a request body may go without sending a byte (408)"
    )
    keep_alive_s: int = Field(
        5, ge=1, description="how long an idle connection stays open between requests"
    )
    max_connections: int = Field(
        1000,
        ge=1,
        description="open connections or requests in progress at once; a request past it gets "
        "503 + Retry-After (keep it under the process's open-file limit)",
    )
    # Within what the store serves back (domain.nesting.RECORD_DEPTH, 200): records wrap a
    # body's values a few levels deeper, and orjson writes no more than 254 levels.
    max_json_depth: int = Field(
        64, ge=2, le=128, description="levels of arrays and objects a JSON request body may nest"
    )
    max_wait_s: int = Field(60, ge=1, description="upper bound of Prefer: wait=N")
    # A thousand records of 20 MB each made one listing hold gigabytes; past this a page ends
    # early with `next`, however many records `limit` asked for.
    max_page_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        description="bytes a page of GET /v1/predictions may take (always at least one record)",
    )
    # Streaming (service.stream, api.sse): what a prediction may print, and how streams are fed.
    max_prediction_logs_chars: int = Field(
        1024 * 1024,
        ge=1024,
        description="characters of logs a prediction keeps; past them its logs are cut, and say so",
    )
    progress_interval_s: float = Field(
        0.5,
        gt=0,
        le=60,
        description="a running prediction's output and logs are saved (where other API processes "
        "share the store) and sent to its webhook's output and logs events at most this often; "
        "the last always",
    )
    stream_poll_s: float = Field(
        0.5,
        gt=0,
        le=60,
        description="how often a stream of a prediction another API process runs reads the store",
    )
    stream_stall_s: float = Field(
        30.0,
        gt=0,
        description="a stream reader whose connection takes nothing for this long is cut (it "
        "may resume with Last-Event-ID)",
    )
    shutdown_grace_s: float = Field(
        10.0, ge=0, description="how long a stop lets running predictions finish"
    )
    max_reruns: int = Field(
        1, ge=0, description="re-runs of a prediction interrupted by a server stop"
    )
    # Several API processes share one store (store.leases): each renews its claims every third
    # of this and looks for expired ones every half; the database's clock decides.
    lease_s: float = Field(
        15.0,
        ge=1.0,
        le=3600.0,
        description="how long an API process's claim on the predictions it runs lasts without "
        "renewal: after a crash, another process (or the restarted one) takes them over once "
        "it expires",
    )
    workers: int = Field(
        1,
        ge=1,
        le=256,
        description="API processes on this port (cli.workers), each with its own replicas of "
        "every model; they share the store",
    )
    auth: bool = Field(True, description="require an API key on every route but health")
    access_log: bool = Field(
        True,
        description="one JSON line a request on the foretell.access logger (stdout under "
        "foretell serve): method, path, status, duration_ms, key_id, client, request_id",
    )
    otel: bool = Field(
        False,
        description="OpenTelemetry traces of requests and predictions (needs the otel extra; "
        "the exporter from the standard OTEL_* environment)",
    )
    anonymous_public: bool = Field(
        False,
        description="let requests without a key run public models through the dialects' "
        "synchronous prediction routes (nothing else)",
    )
    metrics_open: bool = Field(True, description="serve /metrics without a key")
    rate_per_s: float | None = Field(
        None, gt=0, description="requests per second a key may make, unless the key says"
    )
    rate_burst: int | None = Field(None, ge=1, description="requests a key may make at once")
    max_unfinished_per_owner: int = Field(
        10_000, ge=1, description="asynchronous predictions one owner may have unfinished"
    )
    webhook_allow_private: bool = Field(
        False, description="let webhooks point at private and loopback addresses"
    )
    webhook_timeout_s: float = Field(
        10.0, gt=0, description="one delivery attempt, the answer included"
    )
    webhook_retry_window_s: float = Field(
        3600.0, ge=0, description="how long failed deliveries are retried before they are dead"
    )
    webhook_first_retry_s: float = Field(
        1.0, gt=0, description="delay before the first retry; it doubles after each failure"
    )
    webhook_max_retry_delay_s: float = Field(600.0, gt=0, description="longest delay between tries")
    webhook_concurrency: int = Field(64, ge=1, description="deliveries in flight at once")
    webhook_per_host: int = Field(8, ge=1, description="deliveries in flight to one host")
    # Files in and out (foretell.files): uploads, inputs by URL or data URI, models' outputs.
    files: str | None = Field(
        None,
        description="where stored files live: a directory, or s3://bucket/prefix for an "
        "S3-compatible object store (FORETELL_S3_ENDPOINT_URL and the usual AWS_* variables); "
        "default data_dir/files",
    )
    s3_endpoint_url: str | None = Field(
        None, description="endpoint of the S3-compatible store (MinIO, moto); default AWS's"
    )
    public_url: str | None = Field(
        None,
        description="the base URL callers reach this server at, for stored files' URLs in "
        "records and webhooks; default http://host:port",
    )
    max_file_bytes: int = Field(
        100 * 1024 * 1024, ge=1, description="size of one file: uploaded, fetched or made (413)"
    )
    max_upload_bytes: int = Field(
        200 * 1024 * 1024,
        ge=1024,
        description="size of one upload or multipart request body, streamed to disk, not held "
        "in memory (413); a JSON body stays under max_body_bytes; also one input's files "
        "together (URLs, data: URIs, stored files: 422)",
    )
    max_push_bytes: int = Field(
        2 * 1024**3,
        ge=1024,
        description="size of one pushed model archive (POST /v1/models/{owner}/{name}/versions),"
        " streamed to disk as it arrives (413)",
    )
    max_push_unpacked_bytes: int = Field(
        8 * 1024**3,
        ge=1024,
        description="size of a pushed archive's files together once unpacked, checked on its "
        "members' headers before anything is written (413)",
    )
    max_push_members: int = Field(
        10_000, ge=1, description="files and folders in one pushed archive (422)"
    )
    max_input_files_bytes_held: int = Field(
        1024**3,
        ge=1024,
        description="bytes of input files fetched for predictions not yet ended, held in memory "
        "together; past it, further fetches wait for predictions to end",
    )
    max_files_bytes: int = Field(
        10 * 1024**3, ge=1, description="size of all stored files together (507 past it)"
    )
    file_retention_s: float = Field(
        86400.0, gt=0, description="how long a stored file is kept; then its bytes are deleted"
    )
    fetch_timeout_s: float = Field(
        30.0, gt=0, description="time to fetch one input file from its URL, the body included"
    )
    fetch_allow_private: bool = Field(
        False, description="let input URLs point at private and loopback addresses"
    )
    ray_address: str | None = Field(
        None,
        description="host:port of the Ray cluster's head (its GCS) that replicas placed on Ray "
        "run on; this machine must be a node of that cluster",
    )
    placement: Literal["local", "ray"] = Field(
        "local", description="where the replicas of models whose manifest has no placement run"
    )
    # A version with a requirements.txt gets its own venv (foretell.builds), cached here by
    # the hash of its requirements; several API processes may share the folder.
    environments_dir: Path | None = Field(
        None,
        description="where the environments of models with a requirements.txt are built; "
        "default data_dir/environments",
    )
    build_timeout_s: float = Field(
        900.0, gt=0, description="time one model environment's build (pip) may take"
    )

    @field_validator("default_model", mode="before")
    @classmethod
    def _model_names(cls, value: Any) -> Any:
        """One name, a comma-separated list of them, or a list of either: the names in order,
        each once (the repeated `--default-model` flag and FORETELL_DEFAULT_MODEL both)."""
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            return value  # pydantic says what is wrong with it
        names: list[Any] = []
        for item in value:
            names += [n.strip() for n in item.split(",")] if isinstance(item, str) else [item]
        return list(dict.fromkeys(n for n in names if n != ""))

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        """As default_model: one, comma-separated, or a list (the repeated --cors-origin)."""
        return cls._model_names(value)

    @field_validator("cors_origins")
    @classmethod
    def _origin_shapes(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"cors_origins '{origin}' is not an origin: scheme://host[:port] with no "
                    "path or trailing slash (e.g. http://localhost:3000), or * for any"
                )
        return [o.lower() for o in value]  # browsers send scheme and host in lower case

    @field_validator("files")
    @classmethod
    def _files_place(cls, value: str | None) -> str | None:
        if value is None or "://" not in value:
            return value  # a directory
        scheme, _, rest = value.partition("://")
        if scheme != "s3" or not rest.split("/", 1)[0]:
            raise ValueError(
                f"files '{value}' is neither a directory nor s3://bucket/prefix (an "
                "S3-compatible store; its endpoint in s3_endpoint_url)"
            )
        return value

    @field_validator("ray_address")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"ray_address '{value}' is not host:port (the head's GCS, e.g. 127.0.0.2:6379)"
            )
        return value

    @model_validator(mode="after")
    def _ray_placement_has_a_cluster(self) -> Settings:
        if self.placement == "ray" and self.ray_address is None:
            raise ValueError(
                "placement 'ray' needs the cluster's address: --ray-address or "
                "FORETELL_RAY_ADDRESS (host:port of its head)"
            )
        return self

    @model_validator(mode="after")
    def _one_body_fits(self) -> Settings:
        cap = self.max_body_bytes_in_flight
        if cap is not None and cap < self.max_body_bytes:
            raise ValueError(
                f"max_body_bytes_in_flight ({cap}) is below max_body_bytes "
                f"({self.max_body_bytes}): a body of the size allowed could never be read"
            )
        return self

    @property
    def body_bytes_in_flight(self) -> int:
        """The cap on request body bytes that unfinished requests hold at once."""
        return self.max_body_bytes_in_flight or 8 * self.max_body_bytes

    @property
    def environments(self) -> Path:
        """Where model environments are built: environments_dir, else data_dir/environments."""
        return self.environments_dir or self.data_dir / "environments"

    @property
    def store_shared(self) -> bool:
        """Whether other API processes may read this store: several workers, or a database
        server (PostgreSQL) that other machines' processes share."""
        return self.workers > 1 or not self.database_url.startswith("sqlite")

    @property
    def database_url(self) -> str:
        if self.db:
            return self.db
        return f"sqlite:///{(self.data_dir / 'foretell.db').resolve()}"
