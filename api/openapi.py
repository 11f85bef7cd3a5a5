"""An OpenAPI document that states the served models' and settings' real limits.

FastAPI's schema comes from the pydantic models, which only know the contract's absolute
bounds. Once the models are loaded, the served ``/openapi.json`` also says how long a latent
must be, which axis and attribute names exist, and this service's ``count``/``size`` maxima,
so generated clients and schema-driven testers see what the service accepts.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.routes.encode import FORM_SCHEMA as ENCODE_FORM
from api.routes.limits import max_faces
from api.schemas import MAX_FIRST_SEED, NAME_PATTERN
from api.state import state_of
from tlgan.pipeline import Pipeline


def install_openapi(app: FastAPI) -> None:
    """Replace ``app.openapi`` with a builder that adds the loaded models' limits."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        state = state_of(app)
        settings = state.settings
        schemas = schema.get("components", {}).get("schemas", {})
        _integer_bounds(schemas)
        _limit(schemas, "GenerateRequest", "seed", maximum=MAX_FIRST_SEED)
        _limit(schemas, "GenerateRequest", "count", maximum=settings.max_count)
        for name in ("GenerateRequest", "EditRequest", "InterpolateRequest", ENCODE_FORM):
            _limit(schemas, name, "size", maximum=settings.max_size)
        _limit(schemas, ENCODE_FORM, "steps", maximum=settings.max_encode_steps)
        _limit(schemas, "InterpolateRequest", "steps", maximum=max_faces(settings, "steps"))
        _name_patterns(schemas)
        pipeline = state.pipeline
        if pipeline is not None and state.ready:
            _add_model_limits(schemas, pipeline)
            app.openapi_schema = schema  # cache only the complete document
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _prop(schemas: dict[str, Any], model: str, field: str) -> dict[str, Any] | None:
    prop = schemas.get(model, {}).get("properties", {}).get(field)
    return prop if isinstance(prop, dict) else None


def _branches(prop: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-null alternatives of a property (``anyOf`` for optional fields)."""
    alts = prop.get("anyOf")
    if isinstance(alts, list):
        return [a for a in alts if isinstance(a, dict) and a.get("type") != "null"]
    return [prop]


def _limit(schemas: dict[str, Any], model: str, field: str, maximum: int) -> None:
    """State ``maximum`` on an integer field: the service's limit, which its route checks
    (the pydantic model may hold none, or a looser one)."""
    prop = _prop(schemas, model, field)
    if prop is None:
        return
    for branch in _branches(prop):
        if branch.get("type") == "integer":
            branch["maximum"] = int(min(branch.get("maximum", maximum), maximum))


def _integer_bounds(node: Any) -> None:
    """FastAPI's OpenAPI models hold ``minimum``/``maximum`` as floats (``64.0``,
    ``9.223372036854776e+18``): write integral bounds of ``integer`` schemas as integers
    again. Large ones have lost digits on the way; :func:`_limit` sets those exactly."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                value = node.get(key)
                if isinstance(value, float) and value.is_integer():
                    node[key] = int(value)
        for value in node.values():
            _integer_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _integer_bounds(value)


def _custom_axes(schemas: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``custom_axes`` properties of the request models."""
    found = (_prop(schemas, model, "custom_axes")
             for model in ("GenerateRequest", "EditRequest", "InterpolateRequest"))
    return [p for p in found if p is not None]


def _name_patterns(schemas: dict[str, Any]) -> None:
    """New axis names (custom_axes keys, /axes/fit's name) match NAME_PATTERN (checked by
    an after-validator, which pydantic's schema cannot show)."""
    for prop in _custom_axes(schemas):
        prop.setdefault("propertyNames", {})["pattern"] = NAME_PATTERN
    name = _prop(schemas, "AxesFitRequest", "name")
    if name is not None:
        name["pattern"] = NAME_PATTERN


def _add_model_limits(schemas: dict[str, Any], pipeline: Pipeline) -> None:
    size = pipeline.latent_size
    for model, field in (("EditRequest", "latent"), ("InterpolateRequest", "latent_a"),
                         ("InterpolateRequest", "latent_b"), ("FitExample", "latent"),
                         ("CustomAxisIn", "direction")):
        prop = _prop(schemas, model, field)
        if prop is not None:
            prop["minItems"] = prop["maxItems"] = size
            prop["x-latent-space"] = pipeline.latent_space
    for prop in _custom_axes(schemas):  # a custom axis' bare direction
        for form in prop.get("additionalProperties", {}).get("oneOf", []):
            if form.get("type") == "array":
                form["minItems"] = form["maxItems"] = size
    embedding = getattr(pipeline.extractor, "embedding_size", None)
    if isinstance(embedding, int):
        for field in ("weights", "mean", "std"):
            prop = _prop(schemas, "HeadIn", field)
            if prop is not None:
                prop["minItems"] = prop["maxItems"] = embedding
    axes = pipeline.axis_names
    moves = _prop(schemas, "EditRequest", "moves")
    if moves is not None:
        if axes:
            moves["propertyNames"] = {"enum": axes}
        else:
            moves["maxProperties"] = 0
    locked = _prop(schemas, "EditRequest", "locked")
    if locked is not None:
        if axes:
            locked["items"] = {"type": "string", "enum": axes}
        else:
            locked["maxItems"] = 0
    features = _prop(schemas, "GenerateRequest", "features")
    if features is not None:
        usable = [a for a in pipeline.attributes if a in set(axes)]
        for branch in _branches(features):
            if usable:
                branch["propertyNames"] = {"enum": usable}
            else:
                branch["maxProperties"] = 0
