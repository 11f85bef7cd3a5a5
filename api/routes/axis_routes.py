"""GET /axes and GET /generators: what the service can do; POST /axes/fit: teach an axis."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter

from api.deps import JobsDep, JsonBody, PipelineDep
from api.errors import jsonable
from api.memory import check_memory, fit_memory
from api.routes.responses import BODY_ERRORS, COMMON_ERRORS
from api.schemas import AxesFitRequest, AxesFitResponse, AxesResponse, AxisInfo, GeneratorsResponse
from tlgan.axis_work.teaching import TaughtAxis, teach_axis
from tlgan.catalog import describe_all
from tlgan.pipeline import Pipeline
from tlgan_base.protocols import StatsBundle

router = APIRouter(tags=["models"])

#: face-passes charged per /axes/fit example (its render and embedding, plus its share of the
#: head's cross-validation: about half as much again, measured) and for the fixed part
#: (scoring the shipped samples with the head and the GLM on them)
FIT_COST_PER_EXAMPLE = 1.5
FIT_COST_FIXED = 20.0


def fit_cost(examples: int) -> float:
    """The face-passes a POST /axes/fit of ``examples`` examples is charged."""
    return FIT_COST_PER_EXAMPLE * examples + FIT_COST_FIXED


def _axis_stats(bundle: StatsBundle, index: int) -> dict[str, Any]:
    """The scalar fit statistics of axis ``index`` (vectors such as ``coef`` are left out)."""
    entry = bundle.stats[index] if index < len(bundle.stats) else {}
    out = {}
    for key, value in entry.items():
        value = jsonable(value)
        if value is None or isinstance(value, (str, int, float, bool)):
            out[str(key)] = value
    return out


@router.get("/axes", response_model=AxesResponse, responses=COMMON_ERRORS)
async def axes(pipeline: PipelineDep) -> AxesResponse:
    """The loaded bundle's axes (name, reference or not, fit statistics) and the attributes.

    Axes are unit vectors in z; ``/edit`` moves are distances along them. Statistics are
    the scalar values the bundle recorded when it was fitted (e.g. ``auc_holdout``,
    ``coef_norm``; may be empty), plus ``calibration`` (logit change per unit step) when
    known; vectors such as ``coef`` are left out.
    """
    bundle = pipeline.bundle
    infos = []
    if bundle is not None:
        refs = set(bundle.references)
        for i, name in enumerate(bundle.names):
            stats = _axis_stats(bundle, i)
            if name in pipeline.calibration and "calibration" not in stats:
                stats["calibration"] = pipeline.calibration[name]
            infos.append(AxisInfo(name=name, reference=name in refs, stats=stats))
    return AxesResponse(bundle=pipeline.bundle_id, latent_size=pipeline.latent_size,
                        latent_space=pipeline.latent_space, axes=infos,
                        attributes=pipeline.attributes)


@router.get("/generators", response_model=GeneratorsResponse, responses=COMMON_ERRORS)
async def generators(pipeline: PipelineDep) -> GeneratorsResponse:
    """Registered generators (``loaded: true`` marks the one serving), the loaded one, the
    photo encoder serving POST /encode, the realism critic ranking /generate's faces and the
    upscaler faces asked for at 128 px or more pass through (each null: none; no upscaler
    means Lanczos alone)."""
    loaded = pipeline.generator.describe()
    listed = [dict(g, loaded=g.get("name") == loaded["name"])
              for g in describe_all()["generators"]]
    encoder = pipeline.encoder.describe() if pipeline.encoder is not None else None
    critic = pipeline.critic.describe() if pipeline.critic is not None else None
    upscaler = pipeline.upscaler.describe() if pipeline.upscaler is not None else None
    return GeneratorsResponse(loaded=jsonable(loaded), generators=jsonable(listed),
                              encoder=jsonable(encoder) if encoder is not None else None,
                              critic=jsonable(critic) if critic is not None else None,
                              upscaler=jsonable(upscaler) if upscaler is not None else None)


@router.post("/axes/fit", response_model=AxesFitResponse, dependencies=[JsonBody],
             responses=BODY_ERRORS, tags=["axes"])
async def fit_axis(body: AxesFitRequest, jobs: JobsDep) -> AxesFitResponse:
    """Teach a new axis from marked faces: each example's latent is rendered and embedded by
    the extractor, a regularized logistic head learns the feature from the embeddings, it
    scores the samples the bundle ships, a GLM on z gives the direction (as ``tlgan axes
    add`` does) and it is made orthogonal to ``orthogonal_to``. Stateless: nothing is
    stored; send the answer back as a custom axis or save it with ``tlgan axes import``.
    Bad examples (one label only, a wrong latent length, the name of a bundle axis) get 422
    naming the field, as do more examples than the service's ``max_fit_examples``. The work
    is bounded: embeddings are computed ``max_batch`` faces at a time, and the job is charged
    about 1.5 face-passes per example.
    """
    pipeline = jobs.pipeline
    most = jobs.settings.max_fit_examples
    if len(body.examples) > most:
        raise ValueError(f"examples: at most {most} per request on this service, got "
                         f"{len(body.examples)}")
    settings = jobs.settings
    jobs.memory = check_memory(
        settings, fit_memory(len(body.examples), pipeline.resolution, settings.max_batch),
        "examples", f"{len(body.examples)} examples")
    latents = [ex.latent for ex in body.examples]
    labels = [ex.label for ex in body.examples]
    orthogonal_to = body.orthogonal_to
    # cheap checks first, so bad input never waits in the queue
    if pipeline.bundle is not None and (body.name in pipeline.axis_names
                                        or body.name in pipeline.attributes):
        raise ValueError(f"name: {body.name!r} is already an axis or attribute of the loaded "
                         "bundle; choose another name")
    for i, z in enumerate(latents):
        if len(z) != pipeline.latent_size:
            raise ValueError(f"examples[{i}].latent: expected {pipeline.latent_size} numbers "
                             f"(the latent size), got {len(z)}")

    def fit(p: Pipeline, stop: Any) -> TaughtAxis:
        try:
            return teach_axis(p, body.name, latents, labels, orthogonal_to)
        except ValueError as exc:
            text = str(exc)
            if re.match(r"(name|examples|orthogonal_to|samples)\b", text):
                raise
            # the fit itself failed (e.g. the head taught from the examples scores every
            # shipped sample the same): the examples are what the client can change
            raise ValueError(f"examples: no axis can be taught from these examples ({text})"
                             ) from None

    taught = await jobs.call(fit, cost=fit_cost(len(body.examples)))
    out = taught.to_dict()
    return AxesFitResponse(name=out["name"], direction=out["direction"], head=out["head"],
                           stats=jsonable(out["stats"]))
