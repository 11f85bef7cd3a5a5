"""Fixtures for the operations tests: real `tlgan serve` processes and tiny on-disk artifacts.

The servers run as subprocesses on loopback ports, with a scrubbed environment (no TLGAN_*
variable of the developer's leaks in), one torch thread, and stdout/stderr in files (so a
busy access log never blocks them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from ops_helpers import REPO, VENV_BIN, StartServer, TinyArtifacts, clean_env

from tlgan.server_process import ServerNotReady, ServerProcess


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Factory: ``start_server(*options, **TLGAN_env)`` starts ``tlgan serve --port P
    *options`` (TLGAN_TORCH_THREADS=1 unless given) and waits for /readyz (a failure fails
    the test with the server's log); killed on teardown if still running."""
    started: list[ServerProcess] = []

    def start(*options: str, wait: bool = True, **tlgan: str) -> ServerProcess:
        env = clean_env(**{"TLGAN_TORCH_THREADS": "1", **tlgan})
        server = ServerProcess(options, env=env, cwd=REPO, logs=tmp_path / "logs",
                               launcher=[str(VENV_BIN / "tlgan")])
        started.append(server)
        if wait:
            try:
                server.wait_ready(120.0)
            except ServerNotReady as exc:
                pytest.fail(str(exc))
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory: pytest.TempPathFactory) -> TinyArtifacts:
    """Write the tiny seeded generator as a ``state_dict`` plug-in and a bundle of random
    orthonormal axes fitted "for" it (what an operator mounts under /models)."""
    from safetensors.torch import save_file

    from axes.bundle import AxisBundle
    from tlgan.testing import TINY_ATTRIBUTES, TINY_LATENT, tiny_generator
    from tlgan_base.artifact import sha256_file

    folder = tmp_path_factory.mktemp("models")
    gen = tiny_generator(0)
    weights = folder / "tiny.safetensors"
    save_file({k: v.detach().contiguous() for k, v in gen.module.state_dict().items()},
              str(weights))
    plugin = folder / "tiny.json"
    plugin.write_text(json.dumps({
        "kind": "generator-plugin", "name": "tiny-dcgan", "format": "state_dict",
        "file": weights.name, "sha256": sha256_file(weights), "latent_size": TINY_LATENT,
        "resolution": 64, "value_range": [-1, 1],
        "module": "tlgan.generators.dcgan:DCGANGenerator", "kwargs": {"nz": TINY_LATENT,
                                                                      "ngf": 4},
    }))
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((TINY_LATENT, len(TINY_ATTRIBUTES))))
    dirs = q.T.astype(np.float32)
    bundle = AxisBundle(names=list(TINY_ATTRIBUTES), directions=dirs, raw_directions=dirs,
                        references=["Male", "Young"],
                        stats=[{"name": n, "coef_norm": 2.0} for n in TINY_ATTRIBUTES],
                        provenance={"generator": "tiny-dcgan", "extractor": "tiny-extractor"})
    bundle.save(folder / "bundle")
    return TinyArtifacts(plugin=plugin, bundle=folder / "bundle", names=list(TINY_ATTRIBUTES))
