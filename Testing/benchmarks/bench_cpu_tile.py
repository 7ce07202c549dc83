"""One 128^3 tile of the full PASTA network on the CPU: the work counted, then each CPU setting timed.

Counts the multiply-adds of every convolution in one forward pass (hooks on the real modules), then
times one forward pass per setting: fp32 (PyTorch's default oneDNN path), fp32 with channels-last 3D
memory, bf16 autocast (where the CPU has AVX-512 BF16 or AMX) and ``torch.compile`` (TorchInductor),
each after a warm-up pass (on a small input; compile's at the tile's size, as it compiles per shape).
Random weights (no fine-tuned PASTA weights ship); the later rows also say how far their logits and
argmax are from fp32 on the same tile.

    python Testing/benchmarks/bench_cpu_tile.py [--threads 2] [--patch 128]
        [--settings fp32,channels_last,bf16,compile]

Minutes per setting on a 2-core machine: run it alone. Prints a Markdown table for RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import time
from contextlib import nullcontext

import torch

from PASTALib.model.network import PASTA_FULL, PastaUNet, parameter_count


def conv_flops(network: torch.nn.Module, patch: int) -> float:
    """Multiply-adds x 2 of all (transposed) convolutions for one patch, from hooks on a real forward."""
    total = [0.0]

    def hook(module, inputs, output):
        kernel = 1
        for k in module.kernel_size:
            kernel *= k
        if isinstance(module, torch.nn.ConvTranspose3d):
            voxels = inputs[0].shape[2] * inputs[0].shape[3] * inputs[0].shape[4]
        else:
            voxels = output.shape[2] * output.shape[3] * output.shape[4]
        total[0] += 2.0 * module.in_channels * module.out_channels * kernel * voxels / module.groups

    handles = [m.register_forward_hook(hook) for m in network.modules()
               if isinstance(m, (torch.nn.Conv3d, torch.nn.ConvTranspose3d))]
    with torch.inference_mode():
        network(torch.zeros(1, 1, patch, patch, patch))
    for handle in handles:
        handle.remove()
    return total[0]


def timed_forward(network, x, setting: str) -> tuple[float, torch.Tensor]:
    if setting == "channels_last":
        network = network.to(memory_format=torch.channels_last_3d)
        x = x.to(memory_format=torch.channels_last_3d)
    if setting == "compile":  # TorchInductor; the warm-up below compiles for the tile's own shape
        network = torch.compile(network)
    context = torch.autocast("cpu", dtype=torch.bfloat16) if setting == "bf16" else nullcontext()
    with torch.inference_mode(), context:
        compiling = time.perf_counter()
        network(x if setting == "compile" else x[:, :, :64, :64, :64])  # warm-up: kernels chosen (or compiled)
        if setting == "compile":
            print(f"(torch.compile: first call {time.perf_counter() - compiling:.0f} s, compiling included)",
                  flush=True)
        start = time.perf_counter()
        out = network(x)
        seconds = time.perf_counter() - start
    out = out[0] if isinstance(out, (list, tuple)) else out
    return seconds, out.float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--settings", default="fp32,channels_last,bf16")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    network = PastaUNet(PASTA_FULL).eval()
    flops = conv_flops(network, args.patch)
    x = torch.randn(1, 1, args.patch, args.patch, args.patch)
    flags = open("/proc/cpuinfo").read() if platform.system() == "Linux" else ""
    print(f"Full PASTA network ({parameter_count(PASTA_FULL):,} parameters), one {args.patch}^3 tile: "
          f"{flops / 1e12:.2f} TFLOP (convolutions); CPU {platform.processor() or platform.machine()}, "
          f"{args.threads} threads, AVX-512 BF16: {'yes' if 'avx512_bf16' in flags else 'no'}; torch {torch.__version__}\n")
    print("| setting | seconds per tile | GFLOP/s | vs fp32 |\n|---|---:|---:|---|")
    reference = None
    for setting in args.settings.split(","):
        seconds, out = timed_forward(network, x, setting)
        if reference is None:
            reference = out
            versus = "reference"
        else:
            agree = float((out.argmax(1) == reference.argmax(1)).float().mean())
            versus = f"max logit diff {float((out - reference).abs().max()):.3g}, argmax agreement {100 * agree:.2f} %"
        print(f"| {setting} | {seconds:.1f} | {flops / seconds / 1e9:.0f} | {versus} |", flush=True)


if __name__ == "__main__":
    main()
