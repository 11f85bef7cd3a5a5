"""Shared fixtures: the tiny seeded pipeline and the shared CelebA subset location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def celeba_dir() -> Path:
    """The shared CelebA subset: $TLGAN_CELEBA_DIR or ../shared/data/celeba-subset."""
    env = os.environ.get("TLGAN_CELEBA_DIR")
    return Path(env) if env else REPO.parent / "shared" / "data" / "celeba-subset"


@pytest.fixture(scope="session")
def celeba() -> Path:
    """The CelebA data, an optional prerequisite: tests that need it are skipped without it,
    unless ``TLGAN_REQUIRE_CELEBA=1`` (CI), where its absence fails them."""
    path = celeba_dir()
    if not (path / "list_attr_celeba.txt").is_file():
        reason = (f"the CelebA data is not at {path} (set TLGAN_CELEBA_DIR to a folder in "
                  "the official CelebA layout)")
        if os.environ.get("TLGAN_REQUIRE_CELEBA") == "1":
            pytest.fail(f"{reason} (TLGAN_REQUIRE_CELEBA=1)")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def tiny_pipeline():  # type: ignore[no-untyped-def]
    from tlgan.testing import tiny_pipeline as build

    return build(0)


@pytest.fixture(scope="session")
def ranked_pipeline(tiny_pipeline):  # type: ignore[no-untyped-def]
    """The tiny pipeline with a tiny seeded realism critic (its faces are ranked)."""
    from tlgan.pipeline import Pipeline
    from tlgan.testing import tiny_critic

    return Pipeline(generator=tiny_pipeline.generator, extractor=tiny_pipeline.extractor,
                    bundle=tiny_pipeline.bundle, encoder=tiny_pipeline.encoder,
                    critic=tiny_critic(tiny_pipeline.generator))


@pytest.fixture(autouse=True)
def _no_tlgan_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test, never from the developer's TLGAN_* environment."""
    from api.settings import OTHER_VARIABLES  # the project's own (tests', CI's) variables

    for key in list(os.environ):
        if key.upper().startswith("TLGAN_") and key.upper() not in OTHER_VARIABLES:
            monkeypatch.delenv(key)


def pytest_configure(config: pytest.Config) -> None:
    """Tiny models run fastest on one thread, and the suite shares 2 cores with itself."""
    import torch

    torch.set_num_threads(1)
