"""tlgan_base.devices.memory_format: channels_last only where oneDNN is safe (issue #23)."""

from __future__ import annotations

import torch

from tlgan_base.devices import CPU_CHANNELS_LAST_MIN, memory_format


def test_channels_last_on_the_cpu_only_for_models_with_enough_channels() -> None:
    cpu = torch.device("cpu")
    assert memory_format(cpu, 4) == torch.contiguous_format  # the width-4 test models
    assert memory_format(cpu, CPU_CHANNELS_LAST_MIN - 1) == torch.contiguous_format
    assert memory_format(cpu, CPU_CHANNELS_LAST_MIN) == torch.channels_last
    assert memory_format(cpu, 32) == torch.channels_last  # the extractor's default widths
    assert memory_format(cpu) == torch.contiguous_format  # a model nobody vouched for


def test_channels_last_on_cuda_contiguous_on_mps() -> None:
    assert memory_format(torch.device("cuda"), 4) == torch.channels_last
    assert memory_format(torch.device("cuda")) == torch.channels_last
    assert memory_format(torch.device("mps"), 64) == torch.contiguous_format


def test_the_extractor_and_its_inputs_share_the_format() -> None:
    from feature_extractor.model import AttributeNet, Extractor, ModelConfig, Normalization

    for widths, fmt in (((4, 8), torch.contiguous_format), ((8, 16), torch.channels_last)):
        net = AttributeNet(ModelConfig(num_attributes=2, widths=widths, depths=(1, 1)))
        ext = Extractor(net, ["a", "b"], Normalization(), name="t", sha256="0", device="cpu")
        assert ext.model.stem[0].weight.is_contiguous(memory_format=fmt)
        assert ext._prepare(torch.rand(2, 3, 64, 64)).is_contiguous(memory_format=fmt)
