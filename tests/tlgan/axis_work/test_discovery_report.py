"""The report's latent map and discovered-direction strips (tiny pipeline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from axes.samples import save_samples
from tlgan.axis_work.discovery_report import discovery_report, load_map_samples
from tlgan.cli.main import cli
from tlgan.pipeline import Pipeline

pytestmark = pytest.mark.slow  # figures and CLI runs: 1-4 s each here, up to 18 s on a busy machine


def _samples(pipe: Pipeline, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    z = pipe.seeds_to_latents(range(n))
    return z, pipe.label_latents(z)


def test_map_from_sample_cache(tiny_pipeline: Pipeline, tmp_path: Path) -> None:
    z, probs = _samples(tiny_pipeline)
    cache = save_samples(tmp_path / "samples", z, probs, np.zeros((len(z), 4), np.float16), {
        "generator": "tiny", "extractor": "tiny", "attributes": tiny_pipeline.attributes,
        "seed": 0, "truncation": 1.0, "embedding_dtype": "float16"})
    lines = discovery_report(tiny_pipeline, tmp_path / "r", samples=cache, k=2, faces=2)
    text = "\n".join(lines)
    assert "![latent map](latent_map.png)" in text and "coloured by P(Male)" in text
    for rel in ("latent_map.png", "discovered/sefa.png", "discovered/pca.png"):
        assert (tmp_path / "r" / rel).stat().st_size > 0


def test_map_from_bundle_npz_and_skip(tiny_pipeline: Pipeline, tmp_path: Path) -> None:
    z, probs = _samples(tiny_pipeline, 20)
    (tmp_path / "b").mkdir()
    np.savez(tmp_path / "b" / "samples.npz", z=z.astype(np.float16), probs=probs)
    got = load_map_samples(None, tmp_path / "b", tiny_pipeline.attributes)
    assert got is not None and got[0].shape == z.shape
    assert load_map_samples(None, tmp_path / "nothing", tiny_pipeline.attributes) is None
    lines = discovery_report(tiny_pipeline, tmp_path / "r", k=1, faces=1,
                             attribute="Smiling")
    assert any(line.startswith("Skipped: no sample cache") for line in lines)
    with pytest.raises(ValueError, match=r"^map-attribute:"):
        discovery_report(tiny_pipeline, tmp_path / "r2", bundle_dir=tmp_path / "b",
                         attribute="Nope", k=1, faces=1)


def test_cli_report_appends_sections(monkeypatch: pytest.MonkeyPatch,
                                     tiny_pipeline: Pipeline, tmp_path: Path) -> None:
    def load(**_: Any) -> Pipeline:
        return tiny_pipeline

    monkeypatch.setattr("tlgan.assembly.load_pipeline", load)
    res = CliRunner().invoke(cli, ["axes", "report", "--out", str(tmp_path / "r"),
                                   "--axes", "Smiling", "--faces", "1", "--curve-faces", "2",
                                   "--discover-k", "2"])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "r" / "summary.md").read_text()
    assert "## Latent map" in md and "## Discovered directions" in md
    assert "| Smiling |" in md
