"""The settings of ``tlgan extractor train`` (:class:`ExtractorTrainConfig`); the training
itself is :mod:`feature_extractor.training`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from feature_extractor.transforms import Augment

POS_WEIGHT_MODES = ("none", "sqrt", "balanced")
AMP_MODES = ("auto", "bf16", "off")
TTA_MODES = ("auto", "flip", "none")
# (flip, zooms) test-time view sets tried by tta="auto", cheapest first (at most 4 views, to
# keep labelling fast).
TTA_CANDIDATES: tuple[tuple[bool, tuple[float, ...]], ...] = (
    (False, (1.0,)), (True, (1.0,)), (True, (1.0, 1.25)))


@dataclass
class ExtractorTrainConfig:
    """Hyper-parameters of :func:`train` (all recorded in the weights' config).

    Attributes:
        epochs: maximum number of epochs (the one-cycle schedule spans them all).
        max_minutes: time budget in minutes from the start of the run (None: no budget);
            when it binds the schedule compresses and ends in time (see module docstring).
        size: model input size, 64 or 128.
        seed: seeds initialisation, shuffling and augmentation.
        device: "cpu", "cuda", "cuda:1" ... or "auto".
        batch_size, lr, weight_decay: optimisation (AdamW, one-cycle to ``lr``).
        widths, depths, dropout: the network (see :class:`feature_extractor.model.ModelConfig`).
        ema: EMA decay of the weights per step (0 disables the EMA).
        patience: stop after this many epochs without a better validation mean AUC
            (0 disables early stopping).
        pos_weight: "none", "sqrt" or "balanced": BCE positive weight (neg/pos)**0.5 or
            neg/pos per attribute, for rare attributes.
        amp: "auto" (bf16 autocast where supported), "bf16" or "off".
        threads: torch CPU threads (None: torch's default).
        workers: threads decoding images.
        cache_dir: keep the decoded images as .npy files there between runs.
        skip_bad: skip (and report) bad rows/images instead of stopping.
        augment: training augmentation.
        teachers: trained extractors (registry names or weights folders) to distil from:
            their averaged logits on each training image (each with its own test-time views)
            become soft targets beside the labels (see ``distill``). An ensemble of teachers
            that average several views is more accurate than any one single-view network;
            distilling it gives a single-view student most of that gain at a quarter of the
            labelling cost.
        distill: weight of the soft-target loss, in [0, 1] (the label loss gets the rest);
            used only with ``teachers``.
        calibrate: after training, fit Platt scaling per attribute on the validation
            partition and fold it into the head (see :mod:`feature_extractor.calibration`),
            so outputs are probabilities despite ``pos_weight``; AUC is unchanged.
        tta: test-time views of the saved extractor (``config["inference"]``): "none",
            "flip" (image + mirror image) or "auto" (chosen on the validation partition among
            :data:`TTA_CANDIDATES`; more views only if they raise mean AUC by >= 0.0005).
    """

    epochs: int = 36
    max_minutes: float | None = None
    size: int = 64
    seed: int = 0
    device: str = "cpu"
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    widths: tuple[int, ...] = (32, 64, 128, 256)
    depths: tuple[int, ...] = (2, 2, 2, 2)
    dropout: float = 0.1
    ema: float = 0.998
    patience: int = 6
    pos_weight: str = "sqrt"
    amp: str = "auto"
    threads: int | None = None
    workers: int = 2
    cache_dir: str | None = None
    skip_bad: bool = False
    augment: Augment = field(default_factory=Augment)
    tta: str = "auto"
    teachers: tuple[str, ...] = ()
    distill: float = 0.7
    calibrate: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.size not in (64, 128):
            raise ValueError(f"size must be 64 or 128, got {self.size}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be at least 2, got {self.batch_size}")
        if self.pos_weight not in POS_WEIGHT_MODES:
            raise ValueError(f"pos_weight must be one of {', '.join(POS_WEIGHT_MODES)}")
        if self.tta not in TTA_MODES:
            raise ValueError(f"tta must be one of {', '.join(TTA_MODES)}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {', '.join(AMP_MODES)}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError(f"max_minutes must be positive, got {self.max_minutes}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if not 0.0 <= self.distill <= 1.0:
            raise ValueError(f"distill must be in [0, 1], got {self.distill}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        d = asdict(self)
        d["widths"] = list(self.widths)
        d["depths"] = list(self.depths)
        d["augment"] = self.augment.as_dict()
        d["teachers"] = list(self.teachers)
        d.pop("cache_dir")
        return d


__all__ = ["AMP_MODES", "POS_WEIGHT_MODES", "TTA_CANDIDATES", "TTA_MODES", "ExtractorTrainConfig"]
