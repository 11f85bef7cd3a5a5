"""The service's settings: one pydantic-settings class read from ``TLGAN_*`` variables.

Every setting can be given as an environment variable (``TLGAN_MAX_COUNT=16``) and, for
``tlgan serve``, overridden by the matching command-line option. Settings are always passed
in explicitly (``create_app(settings)``); nothing reads them globally.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tlgan.encoders import DEFAULT_STEPS as DEFAULT_ENCODE_STEPS
from tlgan_base.devices import resolve_threads
from tlgan_base.errors import ConfigError
from tlgan_base.images import MAX_PHOTO_PIXELS

LogLevel = Literal["critical", "error", "warning", "info", "debug"]


class Settings(BaseSettings):
    """Settings of the REST service (environment variables ``TLGAN_<NAME>``).

    ``extractor`` / ``bundle`` set to ``"none"`` (``tlgan.models.NONE``) serve without
    labelling / editing (routes that need them answer 422 naming the field).
    """

    model_config = SettingsConfigDict(env_prefix="TLGAN_", extra="ignore",
                                      validate_default=True)

    host: str = Field(default="127.0.0.1", description="Interface to listen on.")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port (0: any free port).")
    device: str = Field(default="cpu", description="Torch device: cpu, cuda, cuda:N, mps or auto.")
    generator: str | None = Field(
        default=None,
        description="Registered generator, weights folder or plug-in .json (None: default).")
    extractor: str | None = Field(
        default=None,
        description="Registered extractor or weights folder (None: default; 'none': off).")
    bundle: str | None = Field(
        default=None, description="Axis bundle folder (None: the default bundle; 'none': off).")
    encoder: str | None = Field(
        default=None,
        description="Photo encoder for POST /encode: registered name or weights folder (None: "
        "the one registered for the generator; 'none': off).")
    encode_steps: int = Field(
        default=DEFAULT_ENCODE_STEPS, ge=0, le=10_000,
        description="Refinement steps of POST /encode when the request names none (0: the "
        "encoder alone).")
    max_encode_steps: int = Field(
        default=200, ge=0, le=10_000,
        description="Most refinement steps a POST /encode request may ask for.")
    max_upload_bytes: int = Field(
        default=8_388_608, ge=1024,
        description="Largest POST /encode request body (bytes): the photo and the form.")
    max_upload_pixels: int = Field(
        default=MAX_PHOTO_PIXELS, ge=4096,
        description="Most pixels (width x height) of an uploaded photo, checked from its "
        "header before decoding.")
    max_count: int = Field(default=64, ge=1, le=64, description="Most faces per /generate request.")
    max_size: int = Field(default=1024, ge=16, le=1024,
                          description="Largest output size in pixels.")
    max_body_bytes: int = Field(default=1_048_576, ge=1024,
                                description="Largest request body (bytes).")
    max_header_bytes: int = Field(
        default=65_536, ge=1024,
        description="Largest request line + headers of one request (bytes); above it the "
        "server answers 431 and closes the connection.")
    max_response_bytes: int = Field(
        default=33_554_432, ge=65_536,
        description="Largest response of encoded images (bytes), estimated from count, size "
        "and format before any work is done; above it: 422 naming count and size.")
    batch_window_ms: float = Field(
        default=2.0, ge=0.0, le=1000.0,
        description="How long the batcher waits for more jobs under load (milliseconds).")
    max_batch: int = Field(default=64, ge=1, le=4096, description="Most faces per forward pass.")
    queue_size: int = Field(
        default=256, ge=1,
        description="Most requests waiting in one lane (interactive or bulk); beyond: 503.")
    max_queue_seconds: float = Field(
        default=30.0, gt=0.0, le=3600.0,
        description="Most estimated model seconds of work waiting in one lane; beyond it: "
        "503 with Retry-After = the backlog in seconds.")
    max_queue_wait: float = Field(
        default=30.0, gt=0.0, le=3600.0,
        description="Longest a request waits for the model before it is given up with 503 "
        "(seconds; once started, work runs to its end).")
    torch_threads: int = Field(
        default=0, ge=0, le=1024,
        description="Torch intra-op threads for `tlgan serve` (0: one per CPU core minus one, "
        "leaving a core for HTTP and image encoding).")
    api_key: SecretStr | None = Field(
        default=None,
        description="If set, every request but /healthz, /readyz, /metrics and the web page "
        "needs header X-API-Key (the API docs too, unless public_docs).")
    public_docs: bool = Field(
        default=False,
        description="With an API key set, serve /openapi.json, /docs and /redoc without it "
        "(false: they need X-API-Key like the API). Without an API key they are public.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Allowed CORS origins: JSON list or comma-separated ('*' for any).")
    log_level: LogLevel = Field(default="info", description="Log level of the service.")
    access_log: bool = Field(
        default=True,
        description="One JSON line per request on the tlgan.access logger (stdout).")
    metrics: bool = Field(
        default=True,
        description="Serve Prometheus metrics at GET /metrics (public: no API key).")
    keep_alive: int = Field(
        default=75, ge=1, le=3600,
        description="Seconds an idle keep-alive connection stays open. Keep it above the load "
        "balancer's idle timeout (often 60 s), or the server may close a connection just as "
        "a request is sent on it.")
    tune_malloc: bool = Field(
        default=True,
        description="With glibc's malloc (no jemalloc preloaded), cap its arenas at 2 and fix "
        "its mmap threshold at 256 KiB at start, so resident memory stays flat under load.")
    graceful_timeout: int = Field(
        default=20, ge=1, le=3600,
        description="On SIGTERM, seconds in-flight requests get to finish before they are "
        "cancelled (keep it below the orchestrator's stop timeout).")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [o.strip() for o in text.split(",") if o.strip()]
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("generator", "extractor", "bundle", "encoder", "api_key", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("max_encode_steps")
    @classmethod
    def _cap_covers_default(cls, value: int, info: ValidationInfo) -> int:
        default = info.data.get("encode_steps")
        if default is not None and value < default:
            raise ValueError(f"{value} is below encode_steps ({default}), the budget of "
                             "requests that name none; raise it or lower TLGAN_ENCODE_STEPS")
        return value

    def resolved_torch_threads(self) -> int:
        """``torch_threads``, with 0 resolved to max(1, CPU cores - 1)
        (:func:`tlgan_base.devices.resolve_threads`, as every ``tlgan`` command's
        ``--threads auto``)."""
        return resolve_threads(self.torch_threads)


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment, with ``overrides`` (not None) taking precedence.

    Raises:
        ConfigError: a value is invalid; the message names the setting and its variable.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"]) or "settings"
        raise ConfigError(
            f"{name} (TLGAN_{name.split('.')[0].upper()}): {err['msg']}"
        ) from None
