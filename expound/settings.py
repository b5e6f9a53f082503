"""Service settings: the one place that lists every ``EXPOUND_*`` environment variable.

Parsed once, in ``main``, and passed down; nothing reads the environment at import.

Relative paths (``model_dir``, ``archive_path``, ``signing_key_path``) are resolved against
``EXPOUND_HOME``, never the working directory, so ``expound serve`` finds the same files
wherever it is started. The home defaults to the source checkout holding the package (the
folder with ``pyproject.toml``, where ``make models`` writes) and, for an installed package,
to ``~/.local/share/expound``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from expound.llm.pool import ServerPool, base_urls


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, as a container limits it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Settings(BaseSettings):
    """Typed configuration of one expound server process."""

    model_config = SettingsConfigDict(env_prefix="EXPOUND_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=50051, ge=0, le=65535)
    model_dir: Path = Path("artifacts/models")
    archive_path: Path = Path("var/archive.sqlite3")
    reflection: bool = False
    max_message_bytes: int = Field(default=1 << 20, ge=1024)
    grace_seconds: float = Field(default=5.0, ge=0)
    default_candidates: int = Field(default=4, ge=1, le=8)
    max_candidates: int = Field(default=8, ge=1, le=16)
    default_seed: int = Field(default=7, ge=1)
    additivity_tolerance: float = Field(default=1e-6, gt=0)
    max_question_chars: int = Field(default=2000, ge=1)

    # admission (issue 12): calls beyond these bounds get RESOURCE_EXHAUSTED at once, with
    # RetryInfo saying to retry after retry_after_s.
    max_concurrent_explains: int = Field(default=64, ge=1)
    # Explain calls that may wait for an LLM slot, beyond the llm_max_concurrency on it.
    llm_max_queue: int = Field(default=60, ge=0)
    retry_after_s: float = Field(default=1.0, gt=0)
    # ExplainBatch (issue 13): items of one call explained at once; each still passes the
    # admission above, so keep it below max_concurrent_explains.
    batch_max_in_flight: int = Field(default=8, ge=1)

    # drafting and ranking (issues 3 and 4)
    llm_mode: Literal["constrained", "free", "off"] = "constrained"
    # One server, or a pool of them separated by commas (issue 14): each request goes to
    # the least loaded one in rotation; a failed one is out for a back-off.
    llm_base_url: str = "http://127.0.0.1:8000"
    llm_model: str = "gemma-3-270m"
    llm_api_key: str = ""
    # Constrained drafting: "jump" decodes only at the grammar's choice points (jump-forward
    # decoding); "grammar" decodes every token of one request under the whole grammar.
    llm_decoding: Literal["jump", "grammar"] = "jump"
    # The API drafts are asked on: "completions" (raw prompts) or "chat" (instruct models:
    # the server applies the model's chat template; constrained needs llm_decoding=grammar).
    llm_api: Literal["completions", "chat"] = "completions"
    # The LLM's budget for an Explain call without a client deadline; a client deadline is
    # honoured as it is (less a reserve for ranking and archiving), never capped by this.
    # 30 s: `make bench` (llm, jump decoding, n=4, 2 shared cores) measured analyst calls
    # with 4 at once (the default concurrency) at p95 21 to 29 s over three runs, applicant
    # 12 to 17 s; a shorter default would make calls without a deadline fall back then.
    llm_timeout_s: float = Field(default=30.0, gt=0)
    llm_max_concurrency: int = Field(default=4, ge=1)
    llm_max_tokens: int = Field(default=320, ge=16, le=2048)
    llm_temperature: float = Field(default=0.8, ge=0, le=2)
    llm_health_interval_s: float = Field(default=5.0, gt=0)
    # Draft one what-if explanation (never archived) once the server is up, so that the
    # first caller does not pay for cold caches (9.5 s against ~3 s on the embedded model).
    llm_warmup: bool = True
    ranker_embedder: Literal["minilm", "hashing"] = "minilm"
    # "judge": a rubric judge LLM rates relevance instead of sentence embeddings (for GPU
    # deployments with a capable model); base URL and model default to the drafting LLM's.
    ranker_relevance: Literal["embedding", "judge"] = "embedding"
    judge_base_url: str = ""
    judge_model: str = ""
    rank_weights: dict[str, dict[str, float]] = Field(default_factory=dict)

    # Threads for SHAP and the content plan (issue 14): one per core by default, apart from
    # the threads the archive and model reloads hop through, so a burst cannot queue them.
    cpu_workers: int = Field(default_factory=lambda: usable_cores(), ge=1)

    # archive (issue 5)
    archive_backend: Literal["sqlite", "postgres"] = "sqlite"
    # PostgreSQL roles (libpq conninfo or URL each): the service connects as a role that may
    # only INSERT and SELECT (expiry goes through the owner's guarded function); `expound
    # archive init` installs the schema as its owner. Holds and expiry are the service's RPCs.
    archive_dsn: str = ""
    archive_owner_dsn: str = ""
    # The checkpoints' origin and the signing key's name: printable ASCII, no space or "+".
    archive_log_id: str = Field(default="expound-archive", min_length=1, pattern=r"^[!-*,-~]+$")
    signing_key_path: Path = Path("var/archive-signing-key.pem")
    signing_key_create: bool = True  # create the key if absent, only for a never-signed log
    checkpoint_every_records: int = Field(default=1000, ge=1)
    # A fresh record's inclusion proof waits for the next checkpoint (reads never sign): at
    # most 1.25 intervals.
    checkpoint_every_seconds: float = Field(default=10.0, gt=0)
    retention_months: int = Field(default=25, ge=0)
    # Group commit (issue 14): appends that arrive while a commit runs share the next
    # transaction, up to this many records; 1 commits each append alone.
    archive_group_max: int = Field(default=64, ge=1)
    archive_max_connections: int = Field(default=8, ge=1)  # PostgreSQL pool per process
    retention_months_by_model: dict[str, int] = Field(default_factory=dict)

    # transport security and access control (issue 11). TLS on the gRPC port when a
    # certificate and key are set; mTLS (client certificates required) when a client CA is.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    # Static bearer tokens, stored hashed (see expound.server.tokens); the file is reread
    # when it changes, so removing a line revokes its token without a restart.
    tokens_file: Path | None = None
    # OIDC/JWT bearer tokens, verified against the issuer's public key (PEM).
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_public_key_file: Path | None = None
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "EdDSA"])
    jwt_principal_claim: str = "sub"
    jwt_roles_claim: str = ""  # when set, roles named in this claim are granted too
    jwt_leeway_s: float = Field(default=30.0, ge=0)
    # Principals -> roles -> RPCs; unset: the default policy shipped with the package.
    policy_file: Path | None = None
    # Serve without authentication on a non-loopback address (refused unless this says so).
    insecure: bool = False
    # CA bundle (PEM) trusted for https:// LLM and judge base URLs, beside the system's.
    llm_ca_file: Path | None = None

    # observability (issue 12): Prometheus metrics at http://metrics_host:metrics_port/metrics
    # (0: none; the host defaults to EXPOUND_HOST), traces over OTLP/gRPC when an endpoint is
    # set, log lines as JSON or text.
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    metrics_host: str = ""
    metrics_archive_interval_s: float = Field(default=15.0, gt=0)
    otlp_endpoint: str = ""
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # The HTTP/JSON API and record browser (issue 13) on EXPOUND_HOST, beside gRPC, with the
    # same TLS settings and roles; 0 turns it off.
    http_port: int = Field(default=8080, ge=0, le=65535)

    # home (issue 12): what relative paths are resolved against
    home: Path = Field(default_factory=lambda: default_home())

    @field_validator("llm_base_url")
    @classmethod
    def _one_or_several_urls(cls, value: str) -> str:
        ServerPool(base_urls(value))  # raises ValueError naming what is wrong
        return value

    @model_validator(mode="after")
    def _resolve_against_home(self) -> Settings:
        self.home = self.home.expanduser().absolute()
        self.model_dir = self.home / self.model_dir.expanduser()
        self.archive_path = self.home / self.archive_path.expanduser()
        self.signing_key_path = self.home / self.signing_key_path.expanduser()
        for name in _OPTIONAL_PATHS:
            path = getattr(self, name)
            if path is not None:
                setattr(self, name, self.home / path.expanduser())
        return self


# Optional files, resolved against the home like the paths above.
_OPTIONAL_PATHS = (
    "tls_cert_file",
    "tls_key_file",
    "tls_client_ca_file",
    "tokens_file",
    "jwt_public_key_file",
    "policy_file",
    "llm_ca_file",
)


class ClientSettings(BaseSettings):
    """What the ``expound`` client commands read from the environment to dial a server.

    Each has a command-line option of the same name (``--tls-ca``, ``--cert``, ``--key``,
    ``--token``, ``--tls-server-name``) that takes precedence.
    """

    model_config = SettingsConfigDict(env_prefix="EXPOUND_", extra="ignore")

    tls_ca: Path | None = None  # CA bundle that signed the server's certificate
    client_cert: Path | None = None  # client certificate (PEM) for mTLS
    client_key: Path | None = None  # its private key (PEM)
    token: str = ""  # bearer token (static token or JWT)
    # expound notice (issue 13): the creditor profile and template folder when not given
    notice_creditor: Path | None = None
    notice_templates: Path | None = None
    tls_server_name: str = ""  # the name the server's certificate carries, if not the host's


def default_home() -> Path:
    """The source checkout holding this package, else ``~/.local/share/expound``."""
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout
    return Path.home() / ".local" / "share" / "expound"
