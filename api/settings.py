"""The service's settings: one pydantic-settings class read from ``TLGAN_*`` variables.

Every setting can be given as an environment variable (``TLGAN_MAX_COUNT=16``) and, for
``tlgan serve``, overridden by the matching command-line option. Settings are always passed
in explicitly (``create_app(settings)``); nothing reads them globally.

A ``TLGAN_*`` variable that names no setting (a typo of a setting's name) stops
:func:`load_settings` with one line naming it and the setting it most likely meant, unless it
is one of :data:`OTHER_VARIABLES` (read by the project's scripts, tests, CI and Compose).
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tlgan.critic import DEFAULT_CANDIDATES, MAX_CANDIDATES, MIN_CANDIDATES
from tlgan.encoders import DEFAULT_STEPS as DEFAULT_ENCODE_STEPS
from tlgan_base.devices import resolve_threads
from tlgan_base.domain_errors import ConfigError, clip
from tlgan_base.image_codec import MAX_PHOTO_PIXELS

LogLevel = Literal["critical", "error", "warning", "info", "debug"]

#: ``TLGAN_*`` variables this project reads outside the service's settings. The service
#: ignores them; any other ``TLGAN_*`` variable that names no setting stops ``tlgan serve``
#: (a typo in a setting's name would otherwise be ignored silently). Add a variable
#: here when a script, test or deployment file starts reading one.
OTHER_VARIABLES: Mapping[str, str] = {
    # tests (tests/conftest.py, tests/web, tests/ops) and CI (.ci/run)
    "TLGAN_CELEBA_DIR": "tests: the CelebA data folder",
    "TLGAN_REQUIRE_BROWSER": "CI: browser tests fail instead of skipping",
    "TLGAN_REQUIRE_CELEBA": "CI: CelebA tests fail instead of skipping",
    "TLGAN_REQUIRE_TOOLS": "CI: external linter tests fail instead of skipping",
    "TLGAN_REQUIRE_DOCKER": "CI: Docker image tests fail instead of skipping",
    "TLGAN_CHROMIUM": "tests, scripts/screenshots.py: the chromium binary",
    "TLGAN_CHECKOV": "tests: the checkov binary",
    "TLGAN_SCREENSHOTS": "tests: folder for browser screenshots",
    # scripts/setup.sh, scripts/setup_tools.sh (and docker/Dockerfile, which runs setup.sh)
    "TLGAN_VENV": "scripts/setup.sh: the virtual environment to create",
    "TLGAN_TORCH": "scripts/setup.sh: the torch requirement to install",
    "TLGAN_EXTRAS": "scripts/setup.sh: the package extras to install",
    "TLGAN_TOOLS_VENV": "scripts/setup_tools.sh: the tools' virtual environment",
    # scripts/docker_image.sh and tests/ops/test_docker_image.py (building the image)
    "TLGAN_DOCKER_IMAGE": "tests: an image built beforehand to test instead of building one",
    "TLGAN_DOCKER_TORCH": "scripts/docker_image.sh: the torch requirement served to the build",
    "TLGAN_DOCKER_PYPI": "scripts/docker_image.sh: the package index for the build",
    "TLGAN_DOCKER_INDEX_PORT": "scripts/docker_image.sh: loopback port of the torch index",
    "TLGAN_DOCKER_PIP_CERT": "scripts/docker_image.sh: CA bundle passed to the build's pip",
    "TLGAN_DOCKERD_LOG": "scripts/docker_image.sh: log file of a dockerd it starts",
    # docker/compose.yaml (read by Compose on the host, not by the service)
    "TLGAN_IMAGE": "docker/compose.yaml: the image to run",
    "TLGAN_PUBLISH": "docker/compose.yaml: the host port",
    "TLGAN_MODELS_DIR": "docker/compose.yaml: the host folder mounted at /models",
}


class Settings(BaseSettings):
    """Settings of the REST service (environment variables ``TLGAN_<NAME>``).

    ``extractor`` / ``bundle`` set to ``"none"`` (``tlgan.assembly.NONE``) serve without
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
    critic: str | None = Field(
        default=None,
        description="Realism critic that ranks generated faces: registered name or weights "
        "folder (None: the one registered for the generator; 'none': off, and then faces are "
        "only sampled 'raw').")
    quality: Literal["raw", "ranked", "refined"] | None = Field(
        default=None,
        description="Sampling of /generate and the page when a request names none: 'raw' (each "
        "seed's own face, as before the critic), 'ranked' (the most realistic of "
        "`candidates` faces per seed) or 'refined' (the seed's latent moved up the critic's "
        "score, orthogonal to the axes). None: tlgan.critic.DEFAULT_QUALITY (chosen on "
        "bench/quality.py's figures) with a critic loaded, 'raw' without one ('ranked' or "
        "'refined' with no critic stops the service at start).")
    candidates: int = Field(
        default=DEFAULT_CANDIDATES, ge=MIN_CANDIDATES, le=MAX_CANDIDATES,
        description="Candidates per seed of 'ranked' sampling when a request names none "
        "(chosen on bench/quality.py's figures: docs/models.md).")
    upscaler: str | None = Field(
        default=None,
        description="Face upscaler for images asked for at 128 px or more: registered name or "
        "weights folder (None: the registry's default; 'none': off, Lanczos alone).")
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
    header_timeout: float = Field(
        default=10.0, gt=0.0, le=3600.0,
        description="Seconds a request's line and headers may take from its first byte; "
        "then 408 and the connection is closed (slow clients). A connection that sends "
        "nothing is closed after keep_alive, like an idle one.")
    body_timeout: float = Field(
        default=60.0, gt=0.0, le=3600.0,
        description="Seconds a request's body may take once its headers are in; then 408 "
        "and the connection is closed (slow clients; an 8 MiB photo at 2 Mbit/s takes 34 s).")
    max_response_bytes: int = Field(
        default=33_554_432, ge=65_536,
        description="Largest response of encoded images (bytes), estimated from count, size "
        "and format before any work is done; above it: 422 naming count and size.")
    max_fit_examples: int = Field(
        default=500, ge=10, le=2000,
        description="Most examples of one POST /axes/fit request (each is rendered and "
        "embedded, and the head's cross-validation grows with them); above it: 422 naming "
        "examples.")
    max_request_memory_mb: int = Field(
        default=512, ge=1, le=1_048_576,
        description="Most memory one request may use (MiB), estimated before any work from "
        "what drives it (count and size of faces, examples of /axes/fit, an upload's pixels, "
        "the PCA method of /axes/discover; see docs/operations.md); above it: 422 naming the "
        "field.")
    max_memory_mb: int = Field(
        default=1536, ge=1, le=1_048_576,
        description="Most memory estimated for all admitted, unfinished model jobs together "
        "(MiB, at least max_request_memory_mb); a job beyond it: 503 with Retry-After, so "
        "heavy requests at once cannot multiply the peak.")
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
    loop_turn_requests: int = Field(
        default=4, ge=1, le=10_000,
        description="Most requests that go on computing on the event loop (validating a body, "
        "encoding an answer) in one turn of it; the others take later turns, and the loop "
        "reads its sockets in between, so /healthz and /readyz answer promptly under any "
        "load. Throughput does not change.")
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
        "its mmap threshold at 16 MiB at start, so resident memory stays flat under load.")
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

    @field_validator("generator", "extractor", "bundle", "encoder", "critic", "upscaler",
                     mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_key", mode="before")
    @classmethod
    def _sendable_key(cls, value: Any) -> Any:
        """Empty: no key. Otherwise a key a client can send in a header: printable ASCII,
        no leading or trailing whitespace (HTTP strips it from header values, so such a key
        could never match, and a blank key must not turn authentication off)."""
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not isinstance(value, str) or value == "":
            return None if value == "" else value
        if not value.strip():
            raise ValueError("is blank (only whitespace); leave it empty or unset for no "
                             "key, or set a real key")
        if value != value.strip():
            raise ValueError("has leading or trailing whitespace, which HTTP strips from "
                             "header values, so no request could match it")
        if not all(" " <= ch <= "~" for ch in value):
            raise ValueError("must be printable ASCII: a client cannot send other "
                             "characters in the X-API-Key header")
        return value

    @field_validator("max_encode_steps")
    @classmethod
    def _cap_covers_default(cls, value: int, info: ValidationInfo) -> int:
        default = info.data.get("encode_steps")
        if default is not None and value < default:
            raise ValueError(f"{value} is below encode_steps ({default}), the budget of "
                             "requests that name none; raise it or lower TLGAN_ENCODE_STEPS")
        return value

    @field_validator("max_memory_mb")
    @classmethod
    def _budget_covers_request(cls, value: int, info: ValidationInfo) -> int:
        one = info.data.get("max_request_memory_mb")
        if one is not None and value < one:
            raise ValueError(f"{value} is below max_request_memory_mb ({one}): a request "
                             "allowed alone could never be admitted; raise it or lower "
                             "TLGAN_MAX_REQUEST_MEMORY_MB")
        return value

    def resolved_torch_threads(self) -> int:
        """``torch_threads``, with 0 resolved to max(1, CPU cores - 1)
        (:func:`tlgan_base.devices.resolve_threads`, as every ``tlgan`` command's
        ``--threads auto``)."""
        return resolve_threads(self.torch_threads)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """The ``TLGAN_*`` names in ``environ`` that are neither a setting nor one of
    :data:`OTHER_VARIABLES` (compared case-insensitively, as settings are read)."""
    known = {f"TLGAN_{name.upper()}" for name in Settings.model_fields} | set(OTHER_VARIABLES)
    return sorted(k for k in environ if k.upper().startswith("TLGAN_")
                  and k.upper() not in known)


def check_environment(environ: Mapping[str, str]) -> None:
    """ConfigError naming every unknown ``TLGAN_*`` variable of ``environ`` (and the
    setting each most likely meant), so that a mistyped setting is never ignored."""
    unknown = unknown_variables(environ)
    if not unknown:
        return
    settings = [name.upper() for name in Settings.model_fields]
    parts = []
    for name in unknown:
        # compared without the shared prefix, which would make every name look close
        close = difflib.get_close_matches(name.upper()[len("TLGAN_"):], settings, n=1,
                                          cutoff=0.6)
        hint = f" (did you mean TLGAN_{close[0]}?)" if close else ""
        if name.upper().startswith(("TLGAN_SERVICE_", "TLGAN_PORT_")):
            hint = " (a Kubernetes service link: set enableServiceLinks: false in the pod)"
        parts.append(f"{clip(name)}{hint}")
    raise ConfigError(
        f"environment: unknown setting{'s' if len(parts) > 1 else ''} {', '.join(parts)}; "
        "`tlgan serve --help` lists every TLGAN_* setting")


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment, with ``overrides`` (not None) taking precedence.

    The environment is first checked for unknown ``TLGAN_*`` variables
    (:func:`check_environment`).

    Raises:
        ConfigError: a value is invalid, or a ``TLGAN_*`` variable names no setting; the
            message names the setting and its variable.
    """
    check_environment(os.environ)
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(str(p) for p in err["loc"]) or "settings"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{name} (TLGAN_{name.split('.')[0].upper()}): {msg}") from None
