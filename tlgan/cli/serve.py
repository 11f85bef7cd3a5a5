"""``tlgan serve``: run the REST API under uvicorn."""

from __future__ import annotations

import click

from axes.artifact import ArtifactError


def _ignore_signal(sig: int, frame: object) -> None:
    """Signal handler that does nothing (see ``serve``)."""


def _default(name: str) -> str:
    """show_default text: the setting's default and its environment variable."""
    from api.settings import Settings

    field = Settings.model_fields[name]
    value = field.get_default(call_default_factory=True)
    shown = "registry default" if value is None else ("none" if value == [] else str(value))
    return f"{shown}; env TLGAN_{name.upper()}"


@click.command()
@click.option("--host", default=None, show_default=_default("host"),
              help="Interface to listen on (0.0.0.0: all).")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              show_default=_default("port"), help="TCP port (0: any free port).")
@click.option("--device", default=None, show_default=_default("device"),
              help="Torch device: cpu, cuda, cuda:N, mps or auto.")
@click.option("--generator", default=None, show_default=_default("generator"),
              help="Registered generator name, weights folder, or plug-in .json file.")
@click.option("--extractor", default=None, show_default=_default("extractor"),
              help="Registered extractor or weights folder; 'none' serves without labelling.")
@click.option("--bundle", default=None, show_default=_default("bundle"),
              help="Axis bundle folder; 'none' serves without axes (no moves).")
@click.option("--max-count", type=click.IntRange(1, 64), default=None,
              show_default=_default("max_count"), help="Most faces per /generate request.")
@click.option("--max-size", type=click.IntRange(16, 1024), default=None,
              show_default=_default("max_size"), help="Largest output image size in pixels.")
@click.option("--max-body-bytes", type=click.IntRange(min=1024), default=None,
              show_default=_default("max_body_bytes"), help="Largest request body (413 above).")
@click.option("--max-header-bytes", type=click.IntRange(min=1024), default=None,
              show_default=_default("max_header_bytes"),
              help="Largest request line + headers (431 and the connection closed above).")
@click.option("--max-response-bytes", type=click.IntRange(min=65_536), default=None,
              show_default=_default("max_response_bytes"),
              help="Largest response of encoded images, estimated from count, size and "
                   "format before any work (422 above).")
@click.option("--batch-window-ms", type=click.FloatRange(0, 1000), default=None,
              show_default=_default("batch_window_ms"),
              help="How long a render waits for others to share its forward pass, under load.")
@click.option("--max-batch", type=click.IntRange(min=1), default=None,
              show_default=_default("max_batch"), help="Most faces per forward pass.")
@click.option("--queue-size", type=click.IntRange(min=1), default=None,
              show_default=_default("queue_size"),
              help="Most requests waiting for the model (503 + Retry-After beyond).")
@click.option("--torch-threads", type=click.IntRange(min=0), default=None,
              show_default=_default("torch_threads"),
              help="Torch intra-op threads (0: CPU cores - 1). On a busy or small machine, "
                   "fewer threads avoid oversubscription stalls.")
@click.option("--cors-origin", "cors_origins", multiple=True,
              show_default=_default("cors_origins"),
              help="Allowed CORS origin (repeatable; '*' for any).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]),
              default=None, show_default=_default("log_level"), help="Log level.")
@click.option("--access-log/--no-access-log", default=None, show_default=_default("access_log"),
              help="Log one JSON line per request to stdout (logger tlgan.access).")
@click.option("--metrics/--no-metrics", default=None, show_default=_default("metrics"),
              help="Serve Prometheus metrics at GET /metrics (public: no API key).")
@click.option("--graceful-timeout", type=click.IntRange(1, 3600), default=None,
              show_default=_default("graceful_timeout"),
              help="On SIGTERM, seconds in-flight requests get to finish before they are "
                   "cancelled.")
def serve(host: str | None, port: int | None, device: str | None, generator: str | None,
          extractor: str | None, bundle: str | None, max_count: int | None,
          max_size: int | None, max_body_bytes: int | None, max_header_bytes: int | None,
          max_response_bytes: int | None,
          batch_window_ms: float | None,
          max_batch: int | None, queue_size: int | None, torch_threads: int | None,
          cors_origins: tuple[str, ...], log_level: str | None, access_log: bool | None,
          metrics: bool | None, graceful_timeout: int | None) -> None:
    """Serve the REST API (FastAPI + uvicorn) on the default models.

    Every option overrides its TLGAN_* environment variable; the API key is read from
    TLGAN_API_KEY only (never from the command line). Models load before the port opens;
    if one is missing or corrupt, the command prints one line and exits with code 2.
    On SIGTERM (or Ctrl-C) it stops accepting connections, turns /readyz to 503, lets
    in-flight requests finish (up to --graceful-timeout seconds), drains the render queue
    and exits 0. API docs: http://HOST:PORT/docs; metrics: http://HOST:PORT/metrics.

    \b
    Examples:
      tlgan serve
      tlgan serve --host 0.0.0.0 --port 8080 --device cuda
      TLGAN_API_KEY=secret tlgan serve --cors-origin https://example.org
      tlgan serve --extractor none --bundle none      # generator only
      curl -s localhost:8000/generate -H 'Content-Type: application/json' \\
           -d '{"seed": 1}' -H 'Accept: image/png' -o face.png
    """
    import asyncio
    import logging
    import signal
    import sys
    from types import FrameType

    import torch
    import uvicorn

    from api.app import create_app
    from api.http_limits import bounded_httptools
    from api.middleware import AccessLogFormatter
    from api.settings import load_settings

    settings = load_settings(
        host=host, port=port, device=device, generator=generator, extractor=extractor,
        bundle=bundle, max_count=max_count, max_size=max_size, max_body_bytes=max_body_bytes,
        max_header_bytes=max_header_bytes, max_response_bytes=max_response_bytes,
        batch_window_ms=batch_window_ms,
        max_batch=max_batch, queue_size=queue_size,
        torch_threads=torch_threads, cors_origins=list(cors_origins) or None, log_level=log_level,
        access_log=access_log, metrics=metrics, graceful_timeout=graceful_timeout,
    )
    # Process-wide, so set here (the process's entry point), never in the app factory.
    torch.set_num_threads(settings.resolved_torch_threads())
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(levelname)s:     %(name)s: %(message)s")
    # Access log: one JSON object per line on stdout (uvicorn's own access log stays off).
    access = logging.getLogger("tlgan.access")
    access.propagate = False
    access.setLevel(settings.log_level.upper())
    if settings.access_log:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(AccessLogFormatter())
        access.addHandler(handler)
    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, lifespan="off",
                            log_level=settings.log_level, access_log=False,
                            timeout_graceful_shutdown=settings.graceful_timeout,
                            http=bounded_httptools(settings.max_header_bytes),
                            h11_max_incomplete_event_size=settings.max_header_bytes)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            app.state.draining = True  # /readyz -> 503 while in-flight requests finish
            super().handle_exit(sig, frame)

    server = Server(config)
    loaded = False

    async def run() -> None:
        nonlocal loaded
        # The app's own lifespan loads the models *before* the port opens, so a load
        # failure surfaces below as one exception (printed as one line) rather than as a
        # uvicorn traceback.
        async with app.router.lifespan_context(app):
            loaded = True
            # uvicorn re-raises the stop signal once it has shut down, for the handler that
            # was installed before it; make that a no-op so that the lifespan's exit (the
            # batcher finishing its queue) still runs and the process exits 0.
            previous = {sig: signal.signal(sig, _ignore_signal)
                        for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                await server.serve()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    try:
        # uvicorn's loop choice (uvloop when installed), as `uvicorn.run` would make.
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(run())
    except KeyboardInterrupt:  # pragma: no cover - interactive stop
        pass
    except Exception as exc:
        if loaded:
            raise
        # One line, no traceback: some loaders embed multi-line library messages.
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].strip()
        domain = isinstance(exc, (ValueError, ArtifactError))
        click.echo(f"Error: {first}" if domain else
                   f"Error: cannot load the models: {type(exc).__name__}: {first}", err=True)
        raise SystemExit(2 if domain else 1) from None
