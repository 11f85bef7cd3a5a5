"""A request's own axes (``custom_axes``): converted to the pipeline's, fitted on the
scheduler; the faces rendered with their heads, and edits (:func:`run_edit`) submitted."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from api.jobs import RequestJobs
from api.schemas import CustomAxisIn
from tlgan.pipeline import Pipeline
from tlgan.pipeline.edit_plan import EditPlan, EditResult

#: face-passes charged per custom head for fitting its logit slope on the shipped samples
#: (5,000 samples: about 60 ms per head on a loaded 2-core CPU, where a face-pass takes
#: 17-65 ms)
HEAD_SLOPE_COST = 1.0


async def with_custom_axes(jobs: RequestJobs, axes: Mapping[str, list[float] | CustomAxisIn]
                           ) -> Pipeline:
    """The request's pipeline plus its ``custom_axes``: :meth:`Pipeline.with_custom`; the
    pipeline itself when there are none.

    Validation (directions, heads for this extractor) is cheap and runs here, so bad input is
    refused at once (422 naming the field); fitting each head's slope on the shipped samples
    is CPU work (seconds for 32 heads), so it runs as a job of the scheduler, with a cost of
    :data:`HEAD_SLOPE_COST` face-passes per head, never on the event loop."""
    pipeline = jobs.pipeline
    if not axes:
        return pipeline
    dirs: dict[str, list[float]] = {}
    heads: dict[str, dict[str, Any]] = {}
    for name, value in axes.items():
        if isinstance(value, CustomAxisIn):
            dirs[name] = value.direction
            if value.head is not None:
                heads[name] = value.head.model_dump()
        else:
            dirs[name] = value
    custom = pipeline.custom_axes(dirs)
    parsed = pipeline.custom_heads(heads)
    if not parsed:
        return pipeline.with_custom(custom)

    def fit(p: Pipeline, stop: Callable[[], bool]) -> Pipeline:
        return pipeline.with_custom(custom, parsed)

    return await jobs.call(fit, cost=HEAD_SLOPE_COST * len(parsed))


async def render_faces(jobs: RequestJobs, own: Pipeline, z: np.ndarray, with_features: bool
                       ) -> tuple[np.ndarray, np.ndarray | None]:
    """Render (and label) latents: in a shared batch, or, when the request brings heads of
    its own (``own`` from :func:`with_custom_axes`), alone with them."""
    if not with_features or own.head_axes == jobs.pipeline.head_axes:
        return await jobs.render(z, with_features)

    def label(p: Pipeline, stop: Callable[[], bool]) -> tuple[np.ndarray, np.ndarray | None]:
        return own.render_and_label(z)

    return await jobs.call(label, cost=len(z))


async def run_edit(jobs: RequestJobs, plan: EditPlan) -> EditResult:
    """Run an edit (:func:`tlgan.pipeline.edit_plan.plan_edit`): a plain render in a shared
    batch (:func:`render_faces`), anything more as one job of the scheduler at the plan's
    cost."""
    if plan.batchable:
        return plan.rendered(*await render_faces(jobs, plan.pipeline, plan.moved,
                                                 plan.with_features))
    return await jobs.call(lambda p, stop: plan.run(stop), cost=plan.cost)
