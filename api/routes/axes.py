"""GET /axes and GET /generators: what the service can do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter

from api.deps import PipelineDep
from api.errors import jsonable
from api.routes.common import COMMON_ERRORS
from api.schemas import AxesResponse, AxisInfo, GeneratorsResponse

router = APIRouter(tags=["models"])


def _axis_stats(bundle: Any, name: str, index: int) -> dict[str, Any]:
    """The scalar fit statistics of one axis (vectors such as ``coef`` are left out)."""
    stats = getattr(bundle, "stats", None)
    entry: Any = None
    if isinstance(stats, Mapping):
        entry = stats.get(name)
    elif isinstance(stats, (list, tuple)) and index < len(stats):
        entry = stats[index]
    if not isinstance(entry, Mapping):
        return {}
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
            stats = _axis_stats(bundle, name, i)
            if name in pipeline.calibration and "calibration" not in stats:
                stats["calibration"] = pipeline.calibration[name]
            infos.append(AxisInfo(name=name, reference=name in refs, stats=stats))
    return AxesResponse(bundle=pipeline.bundle_id, latent_size=pipeline.latent_size,
                        latent_space=pipeline.latent_space, axes=infos,
                        attributes=pipeline.attributes)


@router.get("/generators", response_model=GeneratorsResponse, responses=COMMON_ERRORS)
async def generators(pipeline: PipelineDep) -> GeneratorsResponse:
    """Registered generators (``loaded: true`` marks the one serving) and the loaded one."""
    from tlgan.registry import describe_all

    loaded = pipeline.generator.describe()
    listed = [dict(g, loaded=g.get("name") == loaded["name"])
              for g in describe_all()["generators"]]
    return GeneratorsResponse(loaded=jsonable(loaded), generators=jsonable(listed))
