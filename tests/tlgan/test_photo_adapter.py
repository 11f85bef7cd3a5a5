"""Photo adapters on the tiny seeded DCGAN: tuning, stateless rendering, the string format and
every way an untrusted adapter string is refused."""

from __future__ import annotations

import base64
import threading

import numpy as np
import pytest
import torch

from tlgan.generators.base import to_uint8
from tlgan.photos.adapter import (
    MAX_DELTA,
    MAX_ENCODED,
    Adapter,
    TuneSettings,
    adapter_layout,
    adapter_size,
    decode_adapter,
    encode_adapter,
    render_adapted,
    settings_for,
    tune_adapter,
)
from tlgan.testing import tiny_gaussian_generator, tiny_generator

FAST = TuneSettings(steps=40, lr=0.05, near=1, near_weight=0.1, perceptual=0.0)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2) / 255.0 ** 2
    return float(-10 * np.log10(max(float(mse), 1e-10)))


@pytest.fixture(scope="module")
def tuned() -> tuple[object, np.ndarray, np.ndarray, Adapter]:
    """The tiny generator, a latent, a target (the latent's face, tinted and its contrast
    lowered: what no latent of the tiny generator renders) and an adapter tuned to it."""
    g = tiny_generator(0)
    z = g.sample_latents([1])[0]
    face = to_uint8(g.render_tensor(z[None]))[0].astype(np.float64)
    target = np.clip(face * 0.7 + np.array([60.0, 20.0, 0.0]), 0, 255).astype(np.uint8)
    return g, z, target, tune_adapter(g, z, target, FAST)


def test_layout_counts_batchnorm_and_last_convolution() -> None:
    g = tiny_generator(0)  # ngf 4: BatchNorm over 32 + 16 + 8 + 4 channels; last 4 -> 3
    assert adapter_size(g, "bn") == 2 * (32 + 16 + 8 + 4)
    assert adapter_size(g, "last") == 4 * 3 * 4 * 4
    assert adapter_size(g, "bn+last") == adapter_size(g, "bn") + adapter_size(g, "last")
    assert [n for n, _ in adapter_layout(g, "last")] == ["main.12.weight"]
    with pytest.raises(ValueError, match=r"^parts:"):
        adapter_layout(g, "everything")


def test_tuning_brings_the_render_closer_to_the_target(tuned: tuple) -> None:
    g, z, target, adapter = tuned
    before = to_uint8(g.render_tensor(z[None]))[0]
    after = to_uint8(render_adapted(g, z[None], adapter))[0]
    assert _psnr(after, target) > _psnr(before, target) + 5.0
    assert adapter.deltas.dtype == np.float32 and adapter.size == adapter_size(g, "bn+last")
    assert np.array_equal(adapter.deltas.astype(np.float16).astype(np.float32), adapter.deltas)


def test_tuning_and_rendering_leave_the_shared_generator_untouched() -> None:
    g = tiny_generator(0)
    state = {k: v.clone() for k, v in g.module.state_dict().items()}
    z = g.sample_latents([3, 4])
    plain = g.render_tensor(z)
    a = tune_adapter(g, z[0], to_uint8(g.render_tensor(g.sample_latents([5])))[0], FAST)
    tuned_faces = render_adapted(g, z, a)
    assert not torch.equal(tuned_faces, plain)
    for k, v in g.module.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert all(p.grad is None for p in g.module.parameters())
    assert torch.equal(g.render_tensor(z), plain)


def test_a_zero_adapter_renders_exactly_the_generator() -> None:
    g = tiny_generator(0)
    z = g.sample_latents(range(3))
    zero = Adapter("bn+last", g.sha256[:16], np.zeros(adapter_size(g), np.float32))
    assert torch.equal(render_adapted(g, z, zero), g.render_tensor(z))
    assert torch.equal(render_adapted(g, z, None), g.render_tensor(z))


def test_rendering_with_an_adapter_is_thread_safe(tuned: tuple) -> None:
    g, _, _, adapter = tuned
    z = g.sample_latents(range(4))
    plain, adapted = g.render_tensor(z), render_adapted(g, z, adapter)
    bad: list[str] = []

    def loop(with_adapter: bool) -> None:
        for _ in range(30):
            got = render_adapted(g, z, adapter) if with_adapter else g.render_tensor(z)
            if not torch.equal(got, adapted if with_adapter else plain):
                bad.append("adapted" if with_adapter else "plain")

    threads = [threading.Thread(target=loop, args=(i % 2 == 0,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad


def test_the_string_round_trips_and_renders_the_same(tuned: tuple) -> None:
    g, z, _, adapter = tuned
    text = encode_adapter(adapter)
    assert text.startswith("tla1.bl." + g.sha256[:16] + ".")
    assert len(text) <= MAX_ENCODED
    back = decode_adapter(text, g)
    assert back.parts == adapter.parts and np.array_equal(back.deltas, adapter.deltas)
    assert torch.equal(render_adapted(g, z[None], back), render_adapted(g, z[None], adapter))
    for parts in ("bn", "last"):
        a = Adapter(parts, g.sha256[:16], np.full(adapter_size(g, parts), 0.5, np.float32))
        assert np.array_equal(decode_adapter(encode_adapter(a), g).deltas, a.deltas)


def _with_values(g: object, values: np.ndarray) -> str:
    body = base64.urlsafe_b64encode(values.astype("<f2").tobytes()).decode()
    return f"tla1.bl.{g.sha256[:16]}.{body}"  # type: ignore[attr-defined]


def test_every_bad_adapter_string_is_refused_naming_adapter(tuned: tuple) -> None:
    g, _, _, adapter = tuned
    good = encode_adapter(adapter)
    n = adapter_size(g)
    head, body = good.rsplit(".", 1)
    nan, inf, huge = (np.zeros(n, np.float32) for _ in range(3))
    nan[7], inf[-1], huge[0] = np.nan, np.inf, 10 * MAX_DELTA
    other = tiny_gaussian_generator(0)  # the same layout, another sha256
    cases = {
        "not a string": 123,
        "too big": good + "A" * MAX_ENCODED,
        "wrong format": "tla0" + good[4:],
        "no fields": "hello",
        "odd characters": good[:-4] + "$%^&",
        "unknown parts": good.replace("tla1.bl.", "tla1.xx.", 1),
        "short": head + "." + body[:-8],
        "long": head + "." + body + "AAAA",
        "parts that do not match the data": good.replace("tla1.bl.", "tla1.b.", 1),
        "not finite (NaN)": _with_values(g, nan),
        "not finite (infinity)": _with_values(g, inf),
        "huge values": _with_values(g, huge),
        "bad base64": head + "." + "=" * len(body),
    }
    for why, text in cases.items():
        with pytest.raises(ValueError, match=r"^adapter:"):
            decode_adapter(text, g)
            pytest.fail(why)
    with pytest.raises(ValueError, match=r"^adapter: made for another generator"):
        decode_adapter(good, other)
    with pytest.raises(ValueError, match=r"^adapter: made for another generator"):
        render_adapted(other, other.sample_latents([0]), adapter)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^steps:"):
        TuneSettings(steps=-1)
    with pytest.raises(ValueError, match=r"^lr:"):
        TuneSettings(lr=0.0)
    with pytest.raises(ValueError, match=r"^radius:"):
        TuneSettings(radius=float("nan"))
    g = tiny_generator(0)
    with pytest.raises(ValueError, match=r"^latent:"):
        tune_adapter(g, np.zeros(3, np.float32), np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match=r"^image:"):
        tune_adapter(g, g.sample_latents([0])[0], np.zeros((32, 32, 3), np.uint8))


def test_the_same_photo_and_settings_give_the_same_adapter(tuned: tuple) -> None:
    g, z, target, adapter = tuned
    assert np.array_equal(tune_adapter(g, z, target, FAST).deltas, adapter.deltas)


def test_the_default_regularizer_holds_nearby_faces() -> None:
    """Default tuning (one nearby latent, here held each step) changes the renders of latents
    near the photo's less than the same tuning without the regularizer (what keeps edits of
    the tuned face working); held every third step (the default) still less, by less on this
    tiny generator (the shipped one's edits: docs/photos.md)."""
    import dataclasses

    g = tiny_generator(0)
    z = g.sample_latents([3])[0]
    face = to_uint8(g.render_tensor(z[None]))[0].astype(np.float64)
    target = np.clip(face * 0.7 + np.array([60.0, 20.0, 0.0]), 0, 255).astype(np.uint8)
    held = dataclasses.replace(settings_for(None), steps=60, lr=0.05, near_every=1)
    assert held.near == 1 and held.near_weight > 0
    free = dataclasses.replace(held, near=0)
    u = np.random.default_rng(5).standard_normal((8, z.size)).astype(np.float32)
    near = z + 3.0 * u / np.linalg.norm(u, axis=1, keepdims=True)
    untuned = g.render_tensor(near)

    def drift(settings: TuneSettings) -> float:
        adapter = tune_adapter(g, z, target, settings)
        return float(((render_adapted(g, near, adapter) - untuned) ** 2).mean())

    assert drift(held) < 0.9 * drift(free)
    assert TuneSettings().near_every > 1
    assert drift(dataclasses.replace(held, near_every=TuneSettings().near_every)) < drift(free)


def test_later_batchnorm_parts_tune_only_layers_from_k_on() -> None:
    g = tiny_generator(0)  # BatchNorm over 32 + 16 + 8 + 4 channels, layers 1-4
    assert adapter_size(g, "bn2") == 2 * (16 + 8 + 4)
    assert adapter_size(g, "bn3") == 2 * (8 + 4)
    assert adapter_size(g, "bn4") == 2 * 4
    assert adapter_size(g, "bn2+last") == adapter_size(g, "bn2") + adapter_size(g, "last")
    assert [n for n, _ in adapter_layout(g, "bn3+last")] == [
        "main.7.weight", "main.7.bias", "main.10.weight", "main.10.bias", "main.12.weight"]
    # the parts named before still mean what they meant: every BatchNorm, then the last conv
    assert [n for n, _ in adapter_layout(g, "bn+last")] == [
        f"main.{i}.{w}" for i in (1, 4, 7, 10) for w in ("weight", "bias")] + ["main.12.weight"]
    with pytest.raises(ValueError, match=r"^parts:"):
        adapter_layout(g, "bn5")


def test_the_forward_from_a_frozen_prefix_equals_the_whole_forward() -> None:
    """Tuning computes the untuned layers before the first tuned one once and runs the rest
    each step: the same numbers as the whole forward with the tuned tensors."""
    from tlgan.photos.adapter import _base, _forward, _frozen_until, _main, _params

    g = tiny_generator(0)
    main = _main(g)
    z = torch.from_numpy(g.sample_latents([1, 2, 3]))
    for parts in ("bn", "bn2+last", "bn3", "bn4+last", "last"):
        layout = adapter_layout(g, parts)
        base = _base(main, layout)
        d = torch.from_numpy(np.random.default_rng(1).normal(
            0, 0.1, adapter_size(g, parts)).astype(np.float32))
        params = _params(layout, base, d)
        k = _frozen_until(layout)
        assert k == min(int(n.split(".")[1]) for n, _ in layout) and k > 0
        with torch.no_grad():
            split = _forward(main, _forward(main, z, {}, stop=k), params, start=k)
            assert torch.equal(split, _forward(main, z, params)), parts


def test_every_parts_string_round_trips_and_renders_the_same(tuned: tuple) -> None:
    from tlgan.photos.adapter import PARTS

    g, z, _, _ = tuned
    assert {"bn": "b", "last": "l", "bn+last": "bl"}.items() <= PARTS.items()  # old codes kept
    codes = set()
    for parts, code in PARTS.items():
        a = Adapter(parts, g.sha256[:16], np.random.default_rng(2).normal(
            0, 0.05, adapter_size(g, parts)).astype(np.float16).astype(np.float32))
        text = encode_adapter(a)
        assert text.startswith(f"tla1.{code}.{g.sha256[:16]}.")
        back = decode_adapter(text, g)
        assert back.parts == parts and np.array_equal(back.deltas, a.deltas)
        assert torch.equal(render_adapted(g, z[None], back), render_adapted(g, z[None], a))
        codes.add(code)
    assert len(codes) == len(PARTS)
    # an adapter of later BatchNorms leaves the first layer's scales alone: the same render
    # as every BatchNorm with zero changes there
    a2 = Adapter("bn2", g.sha256[:16], np.full(adapter_size(g, "bn2"), 0.25, np.float32))
    pad = np.concatenate([np.zeros(adapter_size(g, "bn") - a2.size, np.float32), a2.deltas])
    assert torch.equal(render_adapted(g, z[None], a2),
                       render_adapted(g, z[None], Adapter("bn", g.sha256[:16], pad)))


def test_faster_settings_tune_deterministically_and_still_fit(tuned: tuple) -> None:
    import dataclasses

    g, z, target, _ = tuned
    before = _psnr(to_uint8(g.render_tensor(z[None]))[0], target)
    fast = dataclasses.replace(FAST, parts="bn2+last", schedule="cosine", lr_last=0.5,
                               near_every=2)
    a = tune_adapter(g, z, target, fast)
    assert a.parts == "bn2+last" and a.size == adapter_size(g, "bn2+last")
    assert np.array_equal(tune_adapter(g, z, target, fast).deltas, a.deltas)
    assert _psnr(to_uint8(render_adapted(g, z[None], a))[0], target) > before + 5.0
    assert not np.array_equal(tune_adapter(g, z, target, dataclasses.replace(
        fast, schedule="constant")).deltas, a.deltas)
    assert not np.array_equal(tune_adapter(g, z, target, dataclasses.replace(
        fast, lr_last=1.0)).deltas, a.deltas)


def test_new_settings_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^schedule:"):
        TuneSettings(schedule="linear")
    with pytest.raises(ValueError, match=r"^near_every:"):
        TuneSettings(near_every=0)
    with pytest.raises(ValueError, match=r"^lr_last:"):
        TuneSettings(lr_last=0.0)
    with pytest.raises(ValueError, match=r"^parts:"):
        TuneSettings(parts="bn1")


def test_nearby_latents_along_the_axes_need_the_directions(tuned: tuple) -> None:
    import dataclasses

    g, z, target, _ = tuned
    along = dataclasses.replace(FAST, along_axes=True, steps=10)
    with pytest.raises(ValueError, match=r"^directions:"):
        tune_adapter(g, z, target, along)
    with pytest.raises(ValueError, match=r"^directions:"):
        tune_adapter(g, z, target, along, directions=np.ones((3, z.size + 1), np.float32))
    dirs = np.eye(z.size, dtype=np.float32)[:4]
    a = tune_adapter(g, z, target, along, directions=dirs)
    assert np.array_equal(tune_adapter(g, z, target, along, directions=dirs).deltas, a.deltas)
    assert not np.array_equal(a.deltas, tune_adapter(
        g, z, target, dataclasses.replace(along, along_axes=False)).deltas)


def test_the_first_layer_is_updated_only_on_its_full_steps(tuned: tuple) -> None:
    """first_every: layer 1's BatchNorm changes only on every k-th step (one Adam step moves
    each number by at most about lr); the other parts change on every step."""
    import dataclasses

    g, z, target, _ = tuned
    n1 = adapter_size(g, "bn") - adapter_size(g, "bn2")  # layer 1's scales and biases
    once = dataclasses.replace(FAST, first_every=FAST.steps + 1)  # only step 0 is full
    a = tune_adapter(g, z, target, once)
    assert np.abs(a.deltas[:n1]).max() <= FAST.lr * 1.01
    assert np.abs(a.deltas[n1:]).max() > 3 * FAST.lr
    every2 = dataclasses.replace(FAST, first_every=2)
    b = tune_adapter(g, z, target, every2)
    assert np.array_equal(tune_adapter(g, z, target, every2).deltas, b.deltas)
    assert np.abs(b.deltas[:n1]).max() > 2 * FAST.lr
    before = _psnr(to_uint8(g.render_tensor(z[None]))[0], target)
    assert _psnr(to_uint8(render_adapted(g, z[None], b))[0], target) > before + 5.0
    with pytest.raises(ValueError, match=r"^first_every:"):
        TuneSettings(first_every=0)


def test_the_tuning_cost_counts_the_nearby_latents_only_where_they_are_rendered() -> None:
    from tlgan.photos.usecase import TUNE_PASSES_PER_STEP, tune_cost

    every = TuneSettings(steps=150, near=1, near_every=1)
    assert tune_cost(every) == 300 * TUNE_PASSES_PER_STEP
    assert tune_cost(TuneSettings(steps=150, near=1, near_every=2)) == 225 * TUNE_PASSES_PER_STEP
    assert tune_cost(TuneSettings(steps=151, near=2, near_every=2)) == 303 * TUNE_PASSES_PER_STEP


def test_the_perceptual_and_encoder_terms_are_checked() -> None:
    for name in ("perceptual_every", "encoder_every"):
        with pytest.raises(ValueError, match=rf"^{name}:"):
            TuneSettings(**{name: 0})
    with pytest.raises(ValueError, match=r"^encoder_weight:"):
        TuneSettings(encoder_weight=-0.1)
    with pytest.raises(ValueError, match=r"^terms_last:"):
        TuneSettings(terms_last=-1)


def test_the_encoder_term_changes_the_adapter_only_on_its_steps(tuned: tuple) -> None:
    """The photo encoder's feature term: deterministic, changes the adapter, and added only
    on every k-th step, in the last terms_last steps (never added: the adapter without the
    term)."""
    import dataclasses

    from tlgan.testing import tiny_encoder

    g, z, target, _ = tuned
    feats = tiny_encoder(g).features
    plain = tune_adapter(g, z, target, FAST).deltas
    term = dataclasses.replace(FAST, encoder_weight=1.0)
    with pytest.raises(ValueError, match=r"^encoder_features:"):
        tune_adapter(g, z, target, term)
    a = tune_adapter(g, z, target, term, encoder_features=feats)
    assert np.array_equal(tune_adapter(g, z, target, term, encoder_features=feats).deltas,
                          a.deltas)
    assert not np.array_equal(a.deltas, plain)
    every2 = tune_adapter(g, z, target, dataclasses.replace(term, encoder_every=2),
                          encoder_features=feats).deltas
    assert not np.array_equal(every2, a.deltas) and not np.array_equal(every2, plain)
    never = dataclasses.replace(term, encoder_every=FAST.steps + 1)
    assert np.array_equal(tune_adapter(g, z, target, never, encoder_features=feats).deltas,
                          plain)
    late = dataclasses.replace(term, terms_last=5)
    last5 = tune_adapter(g, z, target, late, encoder_features=feats).deltas
    assert not np.array_equal(last5, plain) and not np.array_equal(last5, a.deltas)
    # the same last five steps, whatever the number of steps before them
    longer = dataclasses.replace(late, steps=FAST.steps + 10)
    assert not np.array_equal(tune_adapter(g, z, target, longer, encoder_features=feats).deltas,
                              tune_adapter(g, z, target, dataclasses.replace(
                                  longer, encoder_weight=0.0)).deltas)


def test_the_perceptual_term_is_added_only_on_every_kth_step(tuned: tuple) -> None:
    import dataclasses

    from tlgan.testing import tiny_extractor

    g, z, target, _ = tuned
    ext = tiny_extractor(0)
    plain = tune_adapter(g, z, target, FAST).deltas
    term = dataclasses.replace(FAST, perceptual=1.0)
    every = tune_adapter(g, z, target, term, extractor=ext).deltas
    every4 = dataclasses.replace(term, perceptual_every=4)
    a = tune_adapter(g, z, target, every4, extractor=ext).deltas
    assert np.array_equal(tune_adapter(g, z, target, every4, extractor=ext).deltas, a)
    assert not np.array_equal(a, plain) and not np.array_equal(a, every)
    never = dataclasses.replace(term, perceptual_every=FAST.steps + 1)
    assert np.array_equal(tune_adapter(g, z, target, never, extractor=ext).deltas, plain)


def test_the_default_adds_the_perceptual_term_in_its_last_steps_only(tuned: tuple) -> None:
    """The default tuning uses the extractor when given one (the adapter differs from the one
    tuned without), in the last terms_last steps only (not the adapter of the term added on
    every step)."""
    import dataclasses

    from tlgan.testing import tiny_extractor

    g, z, target, _ = tuned
    d = TuneSettings()
    assert d.perceptual > 0 and 0 < d.terms_last < d.steps
    ext = tiny_extractor(0)
    short = dataclasses.replace(d, steps=30)
    assert not np.array_equal(tune_adapter(g, z, target, short, extractor=ext).deltas,
                              tune_adapter(g, z, target, settings_for(None, short)).deltas)
    # terms_last beyond the steps: the term on every step
    at = dataclasses.replace(short, terms_last=short.terms_last + short.steps)
    assert not np.array_equal(tune_adapter(g, z, target, at, extractor=ext).deltas,
                              tune_adapter(g, z, target, short, extractor=ext).deltas)


def test_the_perceptual_term_without_an_extractor_is_refused_not_skipped(tuned: tuple) -> None:
    """tune_adapter never drops a term it was asked for: without an extractor the default
    (which has the perceptual term) is a ValueError naming ``extractor``; settings_for(None)
    is the explicit way to tune without it, and keeps settings that need no extractor."""
    import dataclasses

    g, z, target, _ = tuned
    short = dataclasses.replace(TuneSettings(), steps=3)
    with pytest.raises(ValueError, match=r"^extractor: "):
        tune_adapter(g, z, target, short)
    without = settings_for(None, short)
    assert without.perceptual == 0
    assert dataclasses.replace(without, perceptual=short.perceptual) == short
    assert settings_for(None, FAST) is FAST and settings_for(object(), short) is short
    tune_adapter(g, z, target, without)  # tunes


def test_a_small_input_transposed_convolution_as_a_product_equals_the_module() -> None:
    """The tuning's product-and-fold form of a transposed convolution of a small input gives
    the module's output within float rounding, and gradients to match (the stride-2 4x4
    layer of the default generator, and an odd-sized one)."""
    from torch import nn

    from tlgan.photos.adapter import _transposed_as_product

    torch.manual_seed(0)
    for m, side in ((nn.ConvTranspose2d(32, 16, 4, 2, 1, bias=False), 4),
                    (nn.ConvTranspose2d(8, 5, 3, 2, 0, output_padding=1, bias=False), 3)):
        x = torch.randn(2, m.in_channels, side, side, requires_grad=True)
        want = m(x)
        got = _transposed_as_product(x, m.weight, m)
        assert got.shape == want.shape
        assert torch.allclose(got, want, atol=1e-5)
        (gw,) = torch.autograd.grad((want ** 2).sum(), [x])
        (gg,) = torch.autograd.grad((got ** 2).sum(), [x])
        assert torch.allclose(gg, gw, atol=1e-4)
