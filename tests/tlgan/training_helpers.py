"""Settings shared by the generator-training tests (a plain module imported from tests/tlgan)."""

from __future__ import annotations

TINY = {"batch": 4, "ngf": 8, "ndf": 8, "fd_samples": 8, "bn_batches": 2, "progress": False,
        "sample_every": 2, "checkpoint_every": 2, "eval_every": 2}
TINY_CLI = ["--batch", "4", "--ngf", "8", "--ndf", "8", "--fd-samples", "8", "--quiet",
            "--sample-every", "2", "--checkpoint-every", "2", "--eval-every", "2"]
