"""axes.samples: chunked resumable writer, atomic finalize, checksummed loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from axes import sample_writer as writer_mod
from axes.sample_writer import SampleCacheWriter, work_dir_for
from axes.samples import load_samples, save_samples
from tlgan_base.artifact import ArtifactError

ATTRS = ["Male", "Young", "Smiling"]
META = {"generator": "pggan-celebahq", "extractor": "celeba-resnet18", "seed": 3,
        "truncation": 0.7, "attributes": ATTRS}
N, L, E = 50, 8, 6


def make(start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic per-index samples, as a real run would make them."""
    idx = np.arange(start, stop, dtype=np.float64)[:, None]
    z = np.sin(idx * 0.1 + np.arange(L)).astype(np.float32)
    probs = (0.5 + 0.4 * np.cos(idx + np.arange(3))).astype(np.float32)
    emb = (idx + np.arange(E)).astype(np.float32) / 100
    return z, probs, emb


def run(writer: SampleCacheWriter, only: list[int] | None = None) -> None:
    for i in writer.pending_chunks():
        if only is not None and i not in only:
            continue
        writer.write_chunk(i, *make(*writer.chunk_range(i)))


def test_write_finalize_load(tmp_path: Path) -> None:
    out = tmp_path / "samples"
    w = SampleCacheWriter(out, META, total_n=N, chunk=16)
    assert w.n_chunks == 4 and w.chunk_range(3) == (48, 50)
    run(w)
    assert w.done and w.n_done == N
    assert w.finalize() == out
    assert not work_dir_for(out).exists()
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "embeddings.npy",
                                                     "probs.npy", "z.npy"]
    cache = load_samples(out)
    z, probs, emb = make(0, N)
    np.testing.assert_array_equal(cache.z, z)
    np.testing.assert_array_equal(cache.probs, probs)
    np.testing.assert_array_equal(cache.embeddings, emb.astype(np.float16))
    assert cache.z.dtype == np.float32 and cache.embeddings.dtype == np.float16
    cfg = cache.config
    assert cfg["kind"] == "sample-cache" and cfg["n"] == N and cfg["seed"] == 3
    assert cfg["truncation"] == 0.7 and cfg["generator"] == "pggan-celebahq"
    assert cfg["latent_size"] == L and cfg["embedding_size"] == E
    assert set(cfg["files"]) == {"z.npy", "probs.npy", "embeddings.npy"}
    assert cache.attributes == ATTRS and cache.n == N and len(cache.id) == 12
    np.testing.assert_array_equal(cache.column("Young"), probs[:, 1])
    with pytest.raises(ValueError, match="valid: Male, Young, Smiling"):
        cache.column("Bald")
    mm = load_samples(out, mmap=True)
    np.testing.assert_array_equal(mm.z, z)


def test_resume_continues_with_missing_chunks(tmp_path: Path) -> None:
    out = tmp_path / "samples"
    w1 = SampleCacheWriter(out, META, total_n=N, chunk=16)
    run(w1, only=[0, 2])
    del w1  # "crash"
    w2 = SampleCacheWriter(out, META, total_n=N, chunk=16)
    assert w2.pending_chunks() == [1, 3]
    assert w2.is_done(0) and w2.n_done == 32
    with pytest.raises(ArtifactError, match="2 of 4 chunks are missing"):
        w2.finalize()
    assert not out.exists()
    run(w2)
    w2.finalize()
    np.testing.assert_array_equal(load_samples(out).z, make(0, N)[0])


def test_resume_with_other_meta_is_refused_or_restarted(tmp_path: Path) -> None:
    out = tmp_path / "samples"
    run(SampleCacheWriter(out, META, total_n=N, chunk=16), only=[0])
    with pytest.raises(ArtifactError, match=r"meta\['seed'\] 3 != 4"):
        SampleCacheWriter(out, {**META, "seed": 4}, total_n=N, chunk=16)
    with pytest.raises(ArtifactError, match="chunk 16 != 10"):
        SampleCacheWriter(out, META, total_n=N, chunk=10)
    w = SampleCacheWriter(out, {**META, "seed": 4}, total_n=N, chunk=16,
                          on_mismatch="restart")
    assert w.pending_chunks() == [0, 1, 2, 3]
    assert not list(work_dir_for(out).glob("chunk-*"))


def test_broken_chunk_and_leftovers_are_redone(tmp_path: Path) -> None:
    out = tmp_path / "samples"
    run(SampleCacheWriter(out, META, total_n=N, chunk=16), only=[0, 1])
    work = work_dir_for(out)
    (work / "chunk-000001.npz").write_bytes(b"PK\x03\x04 truncated")
    (work / ".chunk-000002.abc.tmp").write_bytes(b"half")
    w = SampleCacheWriter(out, META, total_n=N, chunk=16)
    assert w.pending_chunks() == [1, 2, 3]
    assert not (work / ".chunk-000002.abc.tmp").exists()


def test_no_half_written_artifact_on_exception(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "samples"
    save_samples(out, *make(0, 10), META)  # an older, complete cache stays intact
    before = load_samples(out)
    w = SampleCacheWriter(out, META, total_n=N, chunk=16)
    run(w)

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(writer_mod, "save_config", boom)
    with pytest.raises(KeyboardInterrupt):
        w.finalize()
    monkeypatch.undo()
    assert load_samples(out).n == before.n == 10
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []
    assert work_dir_for(out).exists()  # chunks kept: a retry does not re-render
    w2 = SampleCacheWriter(out, META, total_n=N, chunk=16)
    assert w2.done
    w2.finalize()
    assert load_samples(out).n == N


def test_write_chunk_bad_shapes(tmp_path: Path) -> None:
    w = SampleCacheWriter(tmp_path / "s", META, total_n=N, chunk=16)
    z, probs, emb = make(0, 16)
    with pytest.raises(ValueError, match=r"z must have 16 rows"):
        w.write_chunk(0, z[:5], probs, emb)
    with pytest.raises(ValueError, match=r"probs must have shape \(16, 3\)"):
        w.write_chunk(0, z, probs[:, :2], emb)
    with pytest.raises(ValueError, match="embeddings must have shape"):
        w.write_chunk(0, z, probs, emb[:3])
    with pytest.raises(ValueError, match="probs must hold probabilities"):
        w.write_chunk(0, z, probs + 2, emb)
    with pytest.raises(ValueError, match=r"i must be in \[0, 4\)"):
        w.write_chunk(4, z, probs, emb)
    w.write_chunk(0, z, probs, emb)
    z1, p1, e1 = make(16, 32)
    with pytest.raises(ValueError, match="z must have 8 columns"):
        w.write_chunk(1, z1[:, :4], p1, e1)


def test_writer_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="meta is missing"):
        SampleCacheWriter(tmp_path / "s", {"generator": "g"}, total_n=N, chunk=16)
    with pytest.raises(ValueError, match="total_n must be"):
        SampleCacheWriter(tmp_path / "s", META, total_n=0, chunk=16)
    with pytest.raises(ValueError, match="chunk must be"):
        SampleCacheWriter(tmp_path / "s", META, total_n=N, chunk=0)
    with pytest.raises(ValueError, match="embedding_dtype"):
        SampleCacheWriter(tmp_path / "s", {**META, "embedding_dtype": "int8"}, total_n=N,
                          chunk=16)
    with pytest.raises(ValueError, match="reserved"):
        SampleCacheWriter(tmp_path / "s", {**META, "kind": "x"}, total_n=N, chunk=16)


def test_load_refuses_corrupt_or_inconsistent(tmp_path: Path) -> None:
    out = save_samples(tmp_path / "s", *make(0, 20), {**META, "embedding_dtype": "float32"})
    assert load_samples(out).embeddings.dtype == np.float32
    raw = bytearray((out / "probs.npy").read_bytes())
    raw[-1] ^= 0x01
    (out / "probs.npy").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match=r"probs\.npy is corrupt"):
        load_samples(out)
    out2 = save_samples(tmp_path / "s2", *make(0, 20), META)
    cfg = json.loads((out2 / "config.json").read_text())
    cfg["n"] = 21
    (out2 / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ArtifactError, match="do not match config n=21"):
        load_samples(out2)
