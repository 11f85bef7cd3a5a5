"""Distillation for ``tlgan extractor train --teacher``: trained extractors label the
training images, and their averaged logits become soft targets beside the labels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from feature_extractor.extractor_weights import load_extractor
from feature_extractor.training_config import ExtractorTrainConfig
from tlgan_base.progress import progress_bar


def load_teachers(cfg: ExtractorTrainConfig, attributes: list[str], device: Any) -> list[Any]:
    """The teacher extractors, loaded before any slow work so a bad one fails at once.

    Raises:
        ValueError / ArtifactError: a teacher is unknown, corrupt, or does not predict every
            attribute of the data.
    """
    teachers = []
    for name in cfg.teachers:
        teacher = load_extractor(name, device=device)
        missing = [a for a in attributes if a not in teacher.attributes]
        if missing:
            raise ValueError(f"teacher {name!r} does not predict {', '.join(missing[:5])}")
        teachers.append(teacher)
    return teachers


def teacher_targets(teachers: list[Any], images: np.ndarray, train_rows: np.ndarray,
                     attributes: list[str], say: Callable[[str], None],
                     progress: bool) -> tuple[Any, list[dict[str, Any]]]:
    """Soft targets for distillation: the sigmoid of the teachers' mean logit per image.

    Returns ``(targets, provenance)``: a float (N, A) tensor over all cached images (rows
    outside ``train_rows`` are 0.5 and never used) and, per teacher, its name, sha256, views,
    recipe and test AUC; ``(None, [])`` without teachers.
    """
    if not teachers:
        return None, []
    logits = np.zeros((len(images), len(attributes)), np.float64)
    info: list[dict[str, Any]] = []
    for teacher in teachers:
        cols = [teacher.attributes.index(a) for a in attributes]
        say(f"distillation: labelling {train_rows.size} training images with teacher "
            f"{teacher.name} ({teacher.views} views)")
        out = np.empty((train_rows.size, len(attributes)), np.float32)
        step = 512
        for s in progress_bar(range(0, train_rows.size, step), desc=f"teacher {teacher.name}",
                              unit="batch", leave=False, enabled=progress):
            sel = train_rows[s:s + step]
            out[s:s + sel.size] = teacher.predict(images[sel], batch_size=step)[:, cols]
        p = out.astype(np.float64).clip(1e-6, 1 - 1e-6)
        logits[train_rows] += np.log(p / (1 - p))
        tm = teacher.config.get("test_metrics") or {}
        info.append({"name": teacher.name, "sha256": teacher.sha256, "flip_tta": teacher.flip_tta,
                     "zooms": list(teacher.tta_zooms), "model": teacher.config.get("model"),
                     "test_mean_auc": tm.get("mean_auc"),
                     "training": teacher.config.get("training")})
    targets = 1.0 / (1.0 + np.exp(-logits / len(teachers)))
    return torch.from_numpy(targets.astype(np.float32)), info


__all__ = ["load_teachers", "teacher_targets"]
