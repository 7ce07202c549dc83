"""Train the tiny PASTA-family network used as a fixture by the inference equivalence tests.

Random weights make argmax decisions that flip under the smallest numerical difference, which
would make any agreement test meaningless. This script trains a very small network of the PASTA
family (base width 8, 3 poolings) for a few hundred steps on the bundled sample CT to segment
liver (class 1) and kidneys (class 2), so its decisions are confident and structured.
It writes ``Testing/Data/tiny_pasta_organs/`` in the project's model-folder format.

    python Testing/tools/train_tiny_test_model.py   # ~2 minutes on 2 CPU cores
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from PASTALib.io import sample_data
from PASTALib.model.card import ClassInfo
from PASTALib.model.checkpoints import save_model_folder
from PASTALib.inference.grid_resize import resize
from PASTALib.inference.work import new_shape
from PASTALib.model.network import PastaUNet, UNetConfig
from PASTALib.model.preprocessing import Normalization, Preprocessing
from PASTALib.io.volume_io import read_volume

OUT = Path(__file__).resolve().parents[1] / "Data" / "tiny_pasta_organs"
SPACING = (3.5, 3.5, 3.5)
PATCH = (64, 64, 64)
CONFIG = UNetConfig(1, (8, 16, 32, 32), 2, ((3, 3, 3),) * 4, ((2, 2, 2),) * 3, 3)


def main(steps: int = 400, seed: int = 0) -> None:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    ct = read_volume(sample_data.SAMPLES["sample"].path)
    organs = read_volume(sample_data.SAMPLES["sample-organs"].path).array
    target = np.zeros(organs.shape, np.int64)
    target[organs == 5] = 1
    target[(organs == 2) | (organs == 3)] = 2
    foreground = ct.array[target > 0].astype(np.float64)
    norm = Normalization("ct", float(foreground.mean()), float(foreground.std()),
                         float(np.percentile(foreground, 0.5)), float(np.percentile(foreground, 99.5)))
    spacing = ct.spacing[::-1]
    shape = new_shape(ct.array.shape, spacing, SPACING)
    prep = Preprocessing(SPACING, PATCH, norm, source="tiny test model")
    data = resize(torch.from_numpy(norm.apply(ct.array))[None].double(), shape, 3, spacing, SPACING,
                  prep.resampling).float()[0].numpy()
    labels = ndimage.zoom(target, np.divide(shape, target.shape), order=0, mode="nearest", grid_mode=True)
    network = PastaUNet(CONFIG)
    optimiser = torch.optim.Adam(network.parameters(), lr=3e-3)
    weights = torch.tensor([0.2, 1.0, 2.0])
    start = time.time()
    for step in range(steps):
        batch_x, batch_y = [], []
        for _ in range(2):
            origin = [rng.integers(0, max(1, s - p + 1)) for s, p in zip(data.shape, PATCH)]
            window = tuple(slice(o, o + p) for o, p in zip(origin, PATCH))
            x, y = data[window], labels[window]
            if rng.random() < 0.5:  # mirroring augmentation, so test-time mirroring is meaningful
                x, y = x[:, :, ::-1], y[:, :, ::-1]
            batch_x.append(np.ascontiguousarray(x)[None])
            batch_y.append(np.ascontiguousarray(y))
        logits = network(torch.from_numpy(np.stack(batch_x)))
        loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(np.stack(batch_y)), weight=weights)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 50 == 0:
            print(f"step {step:4d}  loss {loss.item():.4f}  {time.time() - start:.0f} s", flush=True)
    if OUT.exists():
        shutil.rmtree(OUT)
    classes = [ClassInfo(0, "background"), ClassInfo(1, "liver"), ClassInfo(2, "kidney")]
    # Trained with left-right mirroring only, so only that axis is valid for test-time mirroring.
    save_model_folder(OUT, [network.state_dict()], classes, prep, name="tiny-pasta-organs (test fixture)",
                      mirror_axes=(2,),
                      extra={"license": "Apache-2.0", "provenance": {
                          "trained_by": "Testing/tools/train_tiny_test_model.py", "steps": steps, "seed": seed,
                          "data": "bundled sample CT and its TotalSegmentator organ mask (liver, kidneys)",
                          "purpose": "test fixture only; not a medical model"}})
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
