"""Our PASTA network is nnU-Net v1's Generic_UNet: same tensor names, shapes and outputs."""

from __future__ import annotations

import pytest
import torch

from PASTALib.errors import PastaInputError
from PASTALib.model.network import (
    PASTA_FULL, PastaUNet, UNetConfig, build_network, expected_shapes, infer_config, parameter_count,
)

from nnunet_peer import v1_generic_unet

SMALL_VARIANTS = {
    "pasta_family_small": UNetConfig(1, (4, 8, 16, 16), 2, ((3, 3, 3),) * 4, ((2, 2, 2),) * 3, 3),
    "anisotropic_pooling": UNetConfig(1, (4, 8, 16, 16), 2, ((1, 3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
                                      ((1, 2, 2), (2, 2, 2), (2, 2, 2)), 3),
    "two_channels_five_classes": UNetConfig(2, (6, 12, 24, 24, 24), 2, ((3, 3, 3),) * 5, ((2, 2, 2),) * 4, 5),
    "three_convs_per_stage": UNetConfig(1, (4, 8, 8), 3, ((3, 3, 3),) * 3, ((2, 2, 2),) * 2, 2),
}


def test_full_pasta_has_240_268_032_parameters_like_nnunet():
    assert parameter_count(PASTA_FULL) == 240_268_032
    with torch.device("meta"):
        reference = v1_generic_unet(PASTA_FULL)
    assert sum(p.numel() for p in reference.parameters()) == 240_268_032
    ours = expected_shapes(PASTA_FULL)
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert ours == theirs
    assert len(ours) == 98


@pytest.mark.parametrize("name", sorted(SMALL_VARIANTS))
@pytest.mark.slow
def test_nnunet_v1_weights_load_and_give_the_same_output(name):
    config = SMALL_VARIANTS[name]
    torch.manual_seed(0)
    reference = v1_generic_unet(config)
    state = reference.state_dict()
    assert infer_config(state) == config
    ours = build_network(state)
    missing, unexpected = ours.load_state_dict(state, strict=True)
    assert not missing and not unexpected
    x = torch.randn(2, config.input_channels, *[8 * d for d in config.divisor])
    with torch.no_grad():
        difference = (reference(x) - ours(x)).abs().max().item()
    assert difference <= 1e-5


def test_classification_head_is_inferred_and_runs():
    config = UNetConfig(1, (4, 8, 16, 16), 2, ((3, 3, 3),) * 4, ((2, 2, 2),) * 3, 3, head_sizes=(32, 16, 14))
    model = PastaUNet(config)
    state = model.state_dict()
    assert {"head.0.weight", "head.2.weight", "head.4.weight"} <= set(state)
    assert infer_config(state) == config
    x = torch.randn(1, 1, 32, 32, 32)
    with torch.no_grad():
        assert model.encode(x).shape == (1, 16)  # encoder stage widths[num_pool - 1], pooled
        assert model.classify(x).shape == (1, 14)


def test_no_head_means_no_classification():
    model = PastaUNet(SMALL_VARIANTS["pasta_family_small"])
    with pytest.raises(PastaInputError, match="no classification head"):
        model.classify(torch.zeros(1, 1, 16, 16, 16))


def test_divisor_is_the_total_stride():
    assert PASTA_FULL.divisor == (32, 32, 32)
    assert SMALL_VARIANTS["anisotropic_pooling"].divisor == (4, 8, 8)
