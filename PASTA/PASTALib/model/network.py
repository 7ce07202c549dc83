"""The PASTA network: nnU-Net v1's ``Generic_UNet`` family, re-implemented with identical weight names.

PASTA is a plain 3D U-Net (Conv3d -> InstanceNorm(affine) -> LeakyReLU(0.01) blocks, strided-conv
downsampling, transposed-conv upsampling, a 1x1x1 segmentation head per decoder level), scaled to
64 -> 1024 channels. Keeping the ``state_dict`` names of the original (``conv_blocks_context.*``,
``tu.*``, ``conv_blocks_localization.*``, ``seg_outputs.*``, ``head.*``) lets every released
checkpoint load without nnU-Net. The configuration is read from the tensor shapes, so the full
model and small variants load with the same code.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Mapping

import torch
from torch import nn

from PASTALib.errors import PastaInputError

FIRST_KEY = "conv_blocks_context.0.blocks.0.conv.weight"


@dataclass(frozen=True)
class UNetConfig:
    """Everything needed to build the network; inferred from a checkpoint by :func:`infer_config`."""

    input_channels: int
    stage_widths: tuple[int, ...]  # encoder stages then the bottleneck: 64, 128, 256, 512, 1024, 1024
    convs_per_stage: int
    conv_kernels: tuple[tuple[int, int, int], ...]  # one per stage incl. bottleneck
    pool_kernels: tuple[tuple[int, int, int], ...]  # one per downsampling step
    num_classes: int
    head_sizes: tuple[int, ...] = ()  # (hidden1, hidden2, outputs) for the classification variant

    @property
    def num_pool(self) -> int:
        return len(self.pool_kernels)

    @property
    def divisor(self) -> tuple[int, int, int]:
        """Each input axis must be a multiple of this (total stride per axis)."""
        total = [1, 1, 1]
        for kernel in self.pool_kernels:
            total = [t * k for t, k in zip(total, kernel)]
        return tuple(total)  # type: ignore[return-value]

    def as_dict(self) -> dict:
        return asdict(self)


class ConvNormAct(nn.Module):
    """Conv3d -> InstanceNorm3d(affine) -> LeakyReLU(0.01); names match nnU-Net v1's block."""

    def __init__(self, channels_in: int, channels_out: int, kernel, stride=1) -> None:
        super().__init__()
        padding = tuple(1 if k == 3 else 0 for k in kernel)
        self.conv = nn.Conv3d(channels_in, channels_out, kernel, stride=stride, padding=padding, bias=True)
        self.instnorm = nn.InstanceNorm3d(channels_out, eps=1e-5, affine=True)
        self.lrelu = nn.LeakyReLU(negative_slope=1e-2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lrelu(self.instnorm(self.conv(x)))


class ConvStack(nn.Module):
    """``n`` blocks; the first may be strided (convolutional pooling). Weights under ``blocks.i``."""

    def __init__(self, channels_in: int, channels_out: int, n: int, kernel, first_stride=1) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[
            ConvNormAct(channels_in if i == 0 else channels_out, channels_out, kernel,
                        first_stride if i == 0 else 1)
            for i in range(n)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class PastaUNet(nn.Module):
    """PASTA's U-Net; ``forward`` returns full-resolution logits (nnU-Net's evaluation mode)."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        widths = config.stage_widths
        n, pools, kernels = config.convs_per_stage, config.pool_kernels, config.conv_kernels
        context: list[nn.Module] = []
        channels = config.input_channels
        for d in range(config.num_pool):
            stride = 1 if d == 0 else pools[d - 1]
            context.append(ConvStack(channels, widths[d], n, kernels[d], stride))
            channels = widths[d]
        bottleneck = widths[config.num_pool]
        context.append(nn.Sequential(
            ConvStack(channels, bottleneck, n - 1, kernels[-1], pools[-1]),
            ConvStack(bottleneck, bottleneck, 1, kernels[-1]),
        ))
        self.conv_blocks_context = nn.ModuleList(context)
        self.tu = nn.ModuleList()
        self.conv_blocks_localization = nn.ModuleList()
        self.seg_outputs = nn.ModuleList()
        below = bottleneck
        for u in range(config.num_pool):
            skip = widths[config.num_pool - 1 - u]
            pool = pools[config.num_pool - 1 - u]
            kernel = kernels[config.num_pool - u]
            self.tu.append(nn.ConvTranspose3d(below, skip, pool, pool, bias=False))
            self.conv_blocks_localization.append(nn.Sequential(
                ConvStack(2 * skip, skip, n - 1, kernel),
                ConvStack(skip, skip, 1, kernel),
            ))
            self.seg_outputs.append(nn.Conv3d(skip, config.num_classes, 1, 1, 0, 1, 1, bias=False))
            below = skip
        if config.head_sizes:
            hidden1, hidden2, outputs = config.head_sizes
            self.head = nn.Sequential(
                nn.Linear(widths[config.num_pool - 1], hidden1), nn.LeakyReLU(),
                nn.Linear(hidden1, hidden2), nn.LeakyReLU(),
                nn.Linear(hidden2, outputs),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for stage in self.conv_blocks_context[:-1]:
            x = stage(x)
            skips.append(x)
        x = self.conv_blocks_context[-1](x)
        for up, local, skip in zip(self.tu, self.conv_blocks_localization, reversed(skips)):
            x = local(torch.cat((up(x), skip), dim=1))
        return self.seg_outputs[-1](x)

    def forward_deep(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Training forward: logits of every decoder level (coarsest first, as ``seg_outputs``) and
        the encoder feature maps (finest first), for deep supervision and attribute heads."""
        skips = []
        for stage in self.conv_blocks_context[:-1]:
            x = stage(x)
            skips.append(x)
        x = self.conv_blocks_context[-1](x)
        outputs = []
        for up, local, skip, head in zip(self.tu, self.conv_blocks_localization, reversed(skips), self.seg_outputs):
            x = local(torch.cat((up(x), skip), dim=1))
            outputs.append(head(x))
        return outputs, skips

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """PASTA features: encoder stages only (no bottleneck), global average pooled -> (B, C)."""
        for stage in self.conv_blocks_context[:-1]:
            x = stage(x)
        return torch.flatten(nn.functional.adaptive_avg_pool3d(x, 1), 1)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the MLP head on the pooled features (classification variant only)."""
        if not self.config.head_sizes:
            raise PastaInputError("This model has no classification head (no 'head.*' weights).")
        return self.head(self.encode(x))


# ------------------------------------------------------------------------------------ config
def _shape(state: Mapping[str, torch.Tensor], key: str) -> tuple[int, ...]:
    return tuple(state[key].shape)


def infer_config(state: Mapping[str, torch.Tensor]) -> UNetConfig:
    """Read the architecture from tensor shapes; a non-PASTA checkpoint gets a clear error."""
    if FIRST_KEY not in state:
        sample = ", ".join(sorted(state)[:3]) or "(no tensors)"
        raise PastaInputError(
            f"This checkpoint is not a PASTA / nnU-Net v1 Generic_UNet network: it has no "
            f"'{FIRST_KEY}' (its first keys are: {sample}).",
            "Use PASTA_final.pth, a PASTA fine-tuned nnU-Net results folder, or a PASTA model folder.",
        )
    stages = sorted({int(m.group(1)) for k in state if (m := re.match(r"conv_blocks_context\.(\d+)\.blocks\.", k))})
    bottleneck = len(stages)
    if stages != list(range(bottleneck)) or f"conv_blocks_context.{bottleneck}.0.blocks.0.conv.weight" not in state:
        raise PastaInputError(
            f"The checkpoint's encoder is incomplete: stages {stages} found, bottleneck "
            f"'conv_blocks_context.{bottleneck}.0' missing.", "The file may be truncated or corrupt.")
    convs = len({k.split(".")[3] for k in state if k.startswith("conv_blocks_context.0.blocks.")})
    widths, kernels = [], []
    for d in range(bottleneck):
        shape = _shape(state, f"conv_blocks_context.{d}.blocks.0.conv.weight")
        widths.append(shape[0])
        kernels.append(tuple(shape[2:]))
    shape = _shape(state, f"conv_blocks_context.{bottleneck}.0.blocks.0.conv.weight")
    widths.append(shape[0])
    kernels.append(tuple(shape[2:]))
    pools = []
    for u in range(bottleneck):
        key = f"tu.{u}.weight"
        if key not in state:
            raise PastaInputError(f"The checkpoint has no '{key}' (decoder upsampling).",
                                  "The file may be truncated, or it is not a PASTA network.")
        pools.append(tuple(_shape(state, key)[2:]))
    pools.reverse()  # tu.0 undoes the last pooling
    head_key = f"seg_outputs.{bottleneck - 1}.weight"
    if head_key not in state:
        raise PastaInputError(f"The checkpoint has no '{head_key}' (full-resolution output head).",
                              "The file may be truncated, or it is not a segmentation network.")
    head_sizes: tuple[int, ...] = ()
    if "head.0.weight" in state:
        head_sizes = tuple(_shape(state, f"head.{i}.weight")[0] for i in (0, 2, 4))
    return UNetConfig(
        input_channels=_shape(state, FIRST_KEY)[1],
        stage_widths=tuple(widths),
        convs_per_stage=convs,
        conv_kernels=tuple(kernels),  # type: ignore[arg-type]
        pool_kernels=tuple(pools),  # type: ignore[arg-type]
        num_classes=_shape(state, head_key)[0],
        head_sizes=head_sizes,
    )


def expected_shapes(config: UNetConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor name and shape the configuration implies (built on the meta device: free)."""
    with torch.device("meta"):
        model = PastaUNet(config)
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def check_state_dict(state: Mapping[str, torch.Tensor], config: UNetConfig, source: str,
                     optional_prefixes: tuple[str, ...] = ("seg_outputs.",)) -> None:
    """Fail on the first tensor that is missing or has the wrong shape, naming it.

    Deep-supervision heads other than the full-resolution one are optional (they are unused at
    inference), as are unexpected extra keys that only nnU-Net's training keeps.
    """
    expected = expected_shapes(config)
    final_head = f"seg_outputs.{config.num_pool - 1}.weight"
    for name, shape in expected.items():
        if name not in state:
            if name.startswith(optional_prefixes) and name != final_head:
                continue
            raise PastaInputError(f"{source}: tensor '{name}' is missing (expected shape {list(shape)}).",
                                  "The checkpoint is incomplete or from another architecture.")
        found = tuple(state[name].shape)
        if found != shape:
            raise PastaInputError(
                f"{source}: tensor '{name}' has shape {list(found)}, expected {list(shape)}.",
                "The checkpoint does not match the architecture of its other tensors (corrupt or mixed files).")


def build_network(state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> PastaUNet:
    """Infer, check and load: the one way a PASTA network is created from weights."""
    config = infer_config(state)
    check_state_dict(state, config, source)
    model = PastaUNet(config)
    model.load_state_dict({k: v for k, v in state.items() if k in model.state_dict()}, strict=False)
    return model.eval()


def parameter_count(config: UNetConfig) -> int:
    with torch.device("meta"):
        model = PastaUNet(config)
    return sum(p.numel() for p in model.parameters())


#: The full PASTA configuration (3 classes: background, organ, lesion): 240,268,032 parameters.
PASTA_FULL = UNetConfig(
    input_channels=1,
    stage_widths=(64, 128, 256, 512, 1024, 1024),
    convs_per_stage=2,
    conv_kernels=((3, 3, 3),) * 6,
    pool_kernels=((2, 2, 2),) * 5,
    num_classes=3,
)
