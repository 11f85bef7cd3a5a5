"""Request and response schemas of the REST API (field names are the public contract).

Requests are strict (no type coercion: ``"5"`` is not a number, ``true`` is not an integer)
and closed (unknown fields are rejected), and every float must be finite: Python's JSON
parser accepts ``NaN``/``Infinity`` literals, which are answered with 422 like any bad value.
Limits that depend on the loaded models or settings (latent length, axis and attribute
names, ``count``/``size`` maxima) are checked by the routes and written into the served
OpenAPI document (see ``api.openapi``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from tlgan.critic import MAX_CANDIDATES, MIN_CANDIDATES
from tlgan.latents import DEFAULT_TRUNCATION, MAX_SEED
from tlgan.photos.adapter import MAX_ENCODED as MAX_ADAPTER
from tlgan_base.image_codec import MAX_SIZE, MIN_SIZE

#: Latent components and move distances are bounded (Gaussian latents lie within about
#: +-6): larger values overflow the models' float32 arithmetic.
BOUND = 1000.0


def _integral(value: Any) -> Any:
    """JSON Schema's ``integer`` includes ``2.0``: accept integral floats, nothing else."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: Integer fields are strict (no strings or booleans) but take integral floats like 2.0, as
#: JSON Schema's ``integer`` does. Bounds come before the validator so that the JSON schema
#: shows them as minimum/maximum.
_AS_INT = BeforeValidator(_integral)
MAX_COUNT = 64
#: The largest first seed: its faces' seeds ``seed .. seed + count - 1`` stay within
#: ``MAX_SEED`` for every count, so the bound needs no cross-field rule and the published
#: maximum is accepted whatever the count. A multiple of 1024 below 2**63, it is also exact as
#: a double, so clients that read JSON numbers as doubles read the same bound.
MAX_FIRST_SEED = 2**63 - 1024
assert MAX_FIRST_SEED + MAX_COUNT - 1 <= MAX_SEED and float(MAX_FIRST_SEED) == MAX_FIRST_SEED
Seed = Annotated[int, Field(ge=0, le=MAX_FIRST_SEED), _AS_INT]
# ``count`` and ``size`` have one upper limit, the service's (``max_count``, ``max_size``,
# never above MAX_COUNT / MAX_SIZE): the routes check it with one message, and the served
# OpenAPI document states it (api.openapi).
Count = Annotated[int, Field(ge=1), _AS_INT]
Size = Annotated[int, Field(ge=MIN_SIZE), _AS_INT]
assert MAX_SIZE >= MIN_SIZE
#: most faces of one /interpolate request (and at most the service's max_count)
MAX_STEPS = 32
Steps = Annotated[int, Field(ge=2), _AS_INT]
Component = Annotated[float, Field(ge=-BOUND, le=BOUND, allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
#: the longest latent (or custom direction, or head vector) a request may carry
MAX_VECTOR = 4096
LatentIn = Annotated[list[Component], Field(
    min_length=1, max_length=MAX_VECTOR,
    description=f"A latent vector in the loaded axes' latent space (z, or w for axes fitted in "
                f"a mapping network's output): latent_size finite floats in [-{BOUND:g}, "
                f"{BOUND:g}].")]

#: Axis names in requests (custom axes, taught axes, moves, locks, feature targets) have at
#: most this many characters: names travel in error messages and in the X-Features header.
MAX_NAME_LENGTH = 64
#: A name a request gives a new axis (a ``custom_axes`` key, ``POST /axes/fit``'s name): no
#: whitespace, control characters, ':' or ',' (they would make error fields ambiguous).
NAME_PATTERN = r"^[^\s\x00-\x1f\x7f:,]+$"
NAME_RULE = (f"1 to {MAX_NAME_LENGTH} characters, without whitespace, control characters, "
             "':' or ','")
_NAME_RE = re.compile(NAME_PATTERN)


def _new_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(f"a new axis name has {NAME_RULE}")
    return value


#: a name that refers to an axis or attribute (moves, locks, targets, orthogonal_to)
AxisName = Annotated[str, Field(max_length=MAX_NAME_LENGTH)]
#: a name a request gives a new axis (also matched against NAME_PATTERN, which the served
#: OpenAPI document states)
NewAxisName = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH),
                        AfterValidator(_new_name)]
Format = Literal["png", "jpeg", "webp"]
Method = Literal["slerp", "lerp"]

_FORMAT: Any = Field(default="png", description="Image encoding of `image`.")
_SIZE: Any = Field(
    default=None, description="Output width = height in pixels (null: the generator's resolution).")
_WITH_FEATURES = Field(default=True, description="Label the faces with the feature extractor "
                       "(false: faster; `features` is then null).")


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests ----------------------------------------------------------------------------
_Vector = Annotated[list[Finite], Field(min_length=1, max_length=MAX_VECTOR)]


class HeadIn(_Request):
    """A custom axis' classifier on extractor embeddings, as ``POST /axes/fit`` returns it:
    ``p = sigmoid(((e - mean) / std) . weights + bias)``; vectors have the extractor's
    embedding size."""

    weights: _Vector
    bias: Finite
    mean: _Vector
    std: _Vector
    val_auc: Probability | None = Field(description="Validation AUC of the head (null: "
                                        "unknown).")
    C: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] = Field(
        description="Inverse regularization strength it was trained with.")
    n_train: Annotated[int, Field(ge=0, le=1_000_000_000), _AS_INT] = Field(
        description="Number of examples it was trained on.")
    positives_rate: Probability = Field(description="Fraction of positive examples.")


class CustomAxisIn(_Request):
    """A request's own axis with its fields named (the form ``POST /axes/fit`` returns)."""

    direction: list[Component] = Field(
        min_length=1, max_length=MAX_VECTOR,
        description="The axis in latent space: latent_size finite floats, not all zero "
        "(normalized by the server).")
    head: HeadIn | None = Field(
        default=None, description="The axis' classifier on extractor embeddings, as `POST "
        "/axes/fit` returns it: with it, the axis gets a probability in `features`.")


def _axis_form(value: Any) -> str:
    """Which form a custom axis takes: ``{"direction": ...}`` or a bare direction."""
    return "axis" if isinstance(value, (dict, CustomAxisIn)) else "direction"


#: union tags of a custom axis' two forms (api.errors leaves them out of error fields)
CUSTOM_AXIS_FORMS = ("axis", "direction")
CustomDirection = Annotated[list[Component], Field(
    min_length=1, max_length=MAX_VECTOR,
    description="The axis in latent space: latent_size finite floats, not all zero "
    "(normalized by the server).")]
CustomAxes = dict[NewAxisName, Annotated[
    Annotated[CustomDirection, Tag("direction")] | Annotated[CustomAxisIn, Tag("axis")],
    Discriminator(_axis_form)]]
_CUSTOM_AXES: Any = Field(
    default_factory=dict, max_length=32,
    description="The request's own axes, {name: direction} or {name: {\"direction\": [...], "
    "\"head\": {...}}} (e.g. what `POST /axes/fit` returns; at most 32, each a finite "
    "non-zero vector of the latent's length, normalized by the server; a name may not be a "
    "bundle axis's): `moves` and `locked` may name them like the bundle's axes, and one with "
    "a head is first-class: a probability in `features`, a `features` target of /generate "
    "and a lock held per face.")


class GenerateRequest(_Request):
    """Render ``count`` seeded faces, optionally conditioned on target feature probabilities."""

    seed: Seed | None = Field(
        default=None,
        description="Seed of the first face (face i has seed + i); null: a random seed, returned.")
    count: Count = Field(default=1, description="Number of faces.")
    truncation: float = Field(default=DEFAULT_TRUNCATION, gt=0.0, le=1.0, allow_inf_nan=False,
                              description="Truncation psi in (0, 1]: smaller is more typical.")
    features: dict[AxisName, Probability] | None = Field(
        default=None, description="Target probability per attribute: move each face along the axes "
        "until the extractor agrees (within 0.2); faces then list `unmet` attributes.")
    quality: Literal["raw", "ranked", "refined"] | None = Field(
        default=None,
        description="'raw': each seed's own face (as before the realism critic). 'refined': the "
        "seed's own latent moved a bounded way up the critic's score, orthogonal to the "
        "bundle's axes (attributes and identity stay). 'ranked': the "
        "face the critic finds most realistic among `candidates` derived from the seed "
        "(candidate 0 is the raw face); with `features`, the start nearest the targets among "
        "the better-ranked half of the 16 candidates. null: the service's `quality` setting "
        "(tlgan.critic.DEFAULT_QUALITY with a critic loaded, raw without). 'ranked' or "
        "'refined' with no critic loaded: 422.")
    candidates: Annotated[int, Field(ge=MIN_CANDIDATES, le=MAX_CANDIDATES), _AS_INT] | None = \
        Field(default=None, description="Candidates per seed of 'ranked' sampling (null: the "
              "service's `candidates` setting). Only with 'ranked' and no `features`: 422 "
              "otherwise.")
    format: Format = _FORMAT
    size: Size | None = _SIZE
    custom_axes: CustomAxes = _CUSTOM_AXES
    with_features: bool = _WITH_FEATURES


class EditRequest(_Request):
    """Move a latent along feature axes, then render it."""

    latent: LatentIn
    moves: dict[AxisName, Component] = Field(
        default_factory=dict,
        description="Distance to move along each (unit) axis in z; several moves add up.")
    locked: list[AxisName] = Field(
        default_factory=list, max_length=1024,
        description="Axes kept fixed: projected out of the summed move and, with an "
        "extractor loaded, held per face (closed loop; see `unheld`).")
    locality: bool | None = Field(
        default=None,
        description="Local edit: keep each moved axis's change inside the region where its "
        "attribute lives (a mask per axis shipped with the bundle; the start face is kept "
        "outside it, blended on the generator's feature map). Gender/age axes and a "
        "request's own axes are global. null: on when the bundle ships masks for this "
        "generator; true where it does not: 422. `latent` is the moved latent either way "
        "(rendered alone it gives the global edit: re-send the start latent and the moves "
        "to reproduce a local edit).")
    hold_references: bool | None = Field(
        default=None,
        description="Hold the reference attributes (gender, age) the edit does not move per "
        "face, as locks are held (closed loop, within 0.05; see `unheld`): corrections move "
        "orthogonally to the moved axes, and the moved attributes keep the probability the "
        "open-loop move gave them (a moved axis may go further to keep it). Costs up to 5 "
        "more render + label passes. null: on when an extractor is loaded; true where none "
        "is: 422.")
    realism: bool | None = Field(
        default=None,
        description="Hold the edited face's realism: after the move (and the locks), when the "
        "realism critic scores the face more than a tolerance (0.5) below the start face, "
        "the latent is corrected by a few steps up the critic's gradient, orthogonal to the "
        "moved, locked and held axes (the move and the locks stay); see `realism` in the "
        "answer (with a critic loaded every edit that moves is checked, held or not). Costs "
        "up to 4 more render + critic passes with their gradients. null: off (the shipped "
        "critic does not tell broken faces from fine ones and the hold fixed none by eye; "
        "see bench/quality_edits.py); true without a critic: 422.")
    adapter: str | None = Field(
        default=None, max_length=MAX_ADAPTER,
        description="A photo adapter from /encode or /photo/edit (the generator tuned to one "
        "photo's face, for the latent it came with): the faces are rendered with it. "
        "Invalid, too big, not finite or for another generator: 422 naming `adapter`.")
    custom_axes: CustomAxes = _CUSTOM_AXES
    format: Format = _FORMAT
    size: Size | None = _SIZE
    with_features: bool = _WITH_FEATURES


class InterpolateRequest(_Request):
    """Faces between two latents: at one ``ratio`` or at ``steps`` evenly spaced ratios."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {"required": ["ratio"], "properties": {"ratio": {"type": "number"},
                                               "steps": {"type": "null"}}},
        {"required": ["steps"], "properties": {"steps": {"type": "integer"},
                                               "ratio": {"type": "null"}}},
    ]})

    latent_a: LatentIn
    latent_b: LatentIn
    ratio: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False,
                                description="One face at this ratio (0: latent_a, 1: latent_b).")
    steps: Steps | None = Field(default=None,
                              description="This many faces from latent_a to latent_b inclusive.")
    method: Method = Field(default="slerp", description="Spherical or linear interpolation.")
    format: Format = _FORMAT
    size: Size | None = _SIZE
    adapter: str | None = Field(
        default=None, max_length=MAX_ADAPTER,
        description="A photo adapter from /encode or /photo/edit (the generator tuned to one "
        "photo's face): both ends and every face between are rendered with it (one adapter "
        "for both). Invalid, too big, not finite or for another generator: 422 naming `adapter`.")
    custom_axes: CustomAxes = _CUSTOM_AXES
    with_features: bool = _WITH_FEATURES

    @model_validator(mode="after")
    def _one_of(self) -> InterpolateRequest:
        if (self.ratio is None) == (self.steps is None):
            raise ValueError("ratio: give exactly one of `ratio` or `steps`")
        return self


# -- responses ---------------------------------------------------------------------------
Features = Annotated[dict[str, float] | None, Field(
    description="Probability per attribute (null when with_features is false).")]


class GeneratedFace(_Response):
    """One generated face."""

    seed: int
    latent: list[float]
    image: str = Field(description="The encoded image, base64.")
    features: Features
    unmet: list[str] | None = Field(
        default=None, description="Feature-conditioned generation only: attributes whose target "
        "could not be met; null otherwise.")
    candidate: int | None = Field(
        default=None, description="'ranked' only: which of the seed's candidates this face is "
        "(0: the raw face); null with 'raw'.")
    realism: float | None = Field(
        default=None, description="'ranked' and 'refined' only: the critic's realism score of "
        "the face's latent (higher = more realistic); null with 'raw'.")


class GenerateResponse(_Response):
    """Faces from POST /generate."""

    faces: list[GeneratedFace]
    generator: str
    bundle: str | None


class RealismOutcome(_Response):
    """An edit's realism hold: the critic's scores (logits, higher = more realistic)."""

    start: float = Field(description="The start face's score.")
    moved: float = Field(description="The edited face's score before the hold.")
    end: float = Field(description="The score of the face returned.")
    held: bool = Field(description="Whether `end` is within `tolerance` of `start` (false: "
                       "the move left the realistic region and, if `hold`, the hold could not "
                       "bring it back; try a smaller move).")
    hold: bool = Field(description="Whether the face was corrected where it fell (the "
                       "request's `realism`); false: only checked, `end` is `moved`.")
    tolerance: float = Field(description="How far below `start` a face may score.")


class EditResponse(_Response):
    """The moved latent and its face."""

    latent: list[float]
    image: str = Field(description="The encoded image, base64.")
    features: Features
    unheld: list[str] | None = Field(
        default=None, description="Locked axes whose attribute probability could not be held "
        "within 0.05 of its value before the move (closed-loop locks); null when no lock was "
        "held closed-loop (no moves, no locks, or no extractor loaded). With `hold_references` "
        "it also lists the held references that could not be held.")
    locality: bool = Field(
        default=False, description="Whether the face was rendered as a local edit (false "
        "when locality is off or every move was global). When true, `latent` rendered alone "
        "gives the global edit, not this face: to reproduce it, send the start latent and "
        "the same moves again.")
    hold_references: bool = Field(
        default=False, description="Whether the references were held per face (false when "
        "hold_references is off, nothing moves, or no reference is left to hold).")
    realism: RealismOutcome | None = Field(
        default=None, description="The realism check's outcome, held or not (null when no "
        "critic is loaded or nothing moved). Image answers carry it as the `X-Realism` "
        "header (compact JSON).")


class EncodeQuality(_Response):
    """How closely the reconstruction matches the photo (both at the generator's
    resolution, the photo centre-cropped and area-resized)."""

    psnr: float = Field(description="Pixel PSNR in dB, photo vs reconstruction.")
    embedding_cosine: float | None = Field(
        default=None, description="Cosine between the feature extractor's embeddings of photo "
        "and reconstruction (null without an extractor).")
    label_agreement: float | None = Field(
        default=None, description="Fraction of the extractor's attributes whose yes/no label "
        "(probability > 0.5) is the same for photo and reconstruction.")


class FoundFace(_Response):
    """A face found in the photo."""

    box: list[float] = Field(description="[left, top, right, bottom] in the photo's pixels "
                             "after EXIF orientation.")
    score: float = Field(description="The detector's confidence (higher is surer).")


class EncodeResponse(_Response):
    """A photo encoded: a latent that /edit, /interpolate and the web page accept, and the
    face it renders."""

    latent: list[float]
    image: str = Field(description="The reconstruction (the face `latent` renders), base64.")
    features: Features
    quality: EncodeQuality
    steps: int = Field(description="Refinement steps run after the encoder.")
    generator: str
    faces: list[FoundFace] = Field(description="Every face found, largest first.")
    face: int = Field(description="Index in `faces` of the face encoded.")
    adapter: str | None = Field(
        default=None, description="The photo adapter tuned to this face (null when the "
        "form's `adapter` is false): send it with `latent` to /edit, /interpolate and "
        "/photo/edit.")
    eyes: list[list[float]] | None = Field(
        default=None, description="The encoded face's eye centres [[x, y], [x, y]] in the "
        "photo's pixels (after EXIF orientation): /photo/edit's `eyes`.")


class InterpolatedFace(_Response):
    """One face between latent_a and latent_b."""

    ratio: float
    latent: list[float]
    image: str = Field(description="The encoded image, base64.")
    features: Features


class InterpolateResponse(_Response):
    """Faces from POST /interpolate, in order of ratio."""

    faces: list[InterpolatedFace]
    generator: str
    bundle: str | None


class AxisInfo(_Response):
    """One feature axis of the loaded bundle."""

    name: str
    reference: bool = Field(description="Whether the axis is a reference (others are "
                            "orthogonalised against it).")
    stats: dict[str, Any] = Field(description="Fit statistics the bundle records (may be empty).")


class AxesResponse(_Response):
    """The loaded bundle's axes and the extractor's attributes."""

    bundle: str | None
    latent_size: int
    latent_space: str = Field(default="z", description="The generator latent space latents "
                              "in and out live in: z, or w when the axes were fitted in a "
                              "mapping network's output.")
    axes: list[AxisInfo]
    attributes: list[str]


#: the most directions GET /axes/discover returns
MAX_DISCOVER = 20
DiscoverMethod = Literal["sefa", "pca"]


class NearestAxis(_Response):
    """The bundle axis closest to a discovered direction."""

    name: str
    cosine: float = Field(description="Signed cosine between the direction and the axis.")


class DiscoveredDirection(_Response):
    """One direction found without labels."""

    index: int = Field(description="Rank of the direction (0: the strongest).")
    direction: list[float] = Field(description="Unit vector of latent_size floats.")
    score: float = Field(description="Eigenvalue of W W^T (sefa) or fraction of the "
                         "activations' variance (pca).")
    moves: dict[str, float] = Field(description="The attributes it moves most: mean change "
                                    "of P(attribute) from -3 to +3 along it, largest first.")
    nearest_axis: NearestAxis | None = Field(description="The bundle axis with the largest "
                                             "|cosine| (null without a bundle).")


class DiscoverResponse(_Response):
    """Unsupervised directions of the loaded generator, strongest first."""

    method: DiscoverMethod
    directions: list[DiscoveredDirection]

class FitExample(_Request):
    """One marked face: its latent and whether it shows the feature (1) or not (0), how much
    of it (a grade in [0, 1]), or that its marker was not sure (null)."""

    latent: LatentIn
    label: Annotated[float, Field(ge=0, le=1)] | None = Field(description=(
        "1: the face shows the feature; 0: it does not; a grade in between (e.g. 0.25 / 0.75: "
        "a little less / more of it; graded marks fit a ridge head on the grades); null: not "
        "sure (left out of the fit, counted in `stats.unsure`). Marks of faces you are sure "
        "about teach more than a mark for every face."))


class AxesFitRequest(_Request):
    """POST /axes/fit: teach an axis from marked faces."""

    name: NewAxisName = Field(description=f"The new axis' name ({NAME_RULE}; not one of the "
                              "bundle's axes or attributes).")
    examples: list[FitExample] = Field(min_length=10, max_length=2000, description=(
        "Marked faces, at least 10 of them not unsure, with at least 2 labels above 0.5 and 2 "
        "below."))
    orthogonal_to: list[AxisName] | None = Field(
        default=None, max_length=64, description="Axes the new one is made orthogonal to "
        "(null: the bundle's reference axes; []: none).")


class AxesFitResponse(_Response):
    """A taught axis: send ``direction`` (and ``head``) back as a custom axis, or save it
    with ``tlgan axes import``."""

    name: str
    direction: list[float] = Field(description="Unit direction (latent_size floats).")
    head: dict[str, Any] = Field(description="The classifier on extractor embeddings: "
                                 "p = sigmoid(((e - mean) / std) . weights + bias).")
    stats: dict[str, Any] = Field(description="Examples of each label, the head's "
                                  "cross-validated accuracy (head_cv_accuracy), the GLM's "
                                  "fit statistics and timings.")


class GeneratorsResponse(_Response):
    """Registered generators, the loaded one, the loaded photo encoder, realism critic and
    upscaler."""

    loaded: dict[str, Any]
    generators: list[dict[str, Any]]
    encoder: dict[str, Any] | None = None
    critic: dict[str, Any] | None = None
    upscaler: dict[str, Any] | None = None


class HealthResponse(_Response):
    """Liveness."""

    status: Literal["ok"]


class ReadyResponse(_Response):
    """Readiness: 200 once the models are loaded."""

    status: Literal["ready", "loading", "draining"]
    generator: str | None = None
    extractor: str | None = None
    bundle: str | None = None


class StatsResponse(_Response):
    """Batcher counters: queue depth and batch sizes."""

    ready: bool
    batcher: dict[str, Any]
    server_errors: int


class ErrorItem(_Response):
    """One problem with the request."""

    field: str = Field(description="Dotted path of the offending field ('body' for the whole).")
    message: str
    type: str


class ErrorResponse(_Response):
    """Every 4xx/5xx answer: a one-line ``detail`` that names the field."""

    detail: str
    errors: list[ErrorItem] | None = None
