"""The pipeline: a generator, an extractor and an axis bundle, and the work done with them.

Split by concern: :mod:`.models` (render, label, embed), :mod:`.axis_table` (axes, a
request's own axes, moves, local-edit masks), :mod:`.locality` (local edits and their
masks), :mod:`.local_edits` (rendering edits), :mod:`.control` (closed loops: conditioning,
locks, references), :mod:`.photo_encoding` (photos), :mod:`.edit_plan` (the edit use case) and
:mod:`.facade` (:class:`Pipeline`, the object callers hold).
"""

from tlgan.pipeline.axis_table import MAX_CUSTOM_AXES, AxisTable
from tlgan.pipeline.control import (
    CONDITION_CANDIDATES,
    CONDITION_MAX_STEPS,
    LOCK_MAX_STEPS,
    LOCK_TOLERANCE,
    ConditionResult,
    HoldResult,
    condition_cost,
    hold_cost,
)
from tlgan.pipeline.edit_plan import EditPlan, EditResult, plan_edit
from tlgan.pipeline.facade import LoadedPipeline, Pipeline
from tlgan.pipeline.models import Models
from tlgan.pipeline.photo_encoding import EncodeResult
from tlgan_base.domain_errors import Stopped

__all__ = ["CONDITION_CANDIDATES", "CONDITION_MAX_STEPS", "LOCK_MAX_STEPS", "LOCK_TOLERANCE",
           "MAX_CUSTOM_AXES", "AxisTable", "ConditionResult", "EditPlan", "EditResult",
           "EncodeResult", "HoldResult", "LoadedPipeline", "Models", "Pipeline", "Stopped",
           "condition_cost", "hold_cost", "plan_edit"]
