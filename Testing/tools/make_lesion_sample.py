"""Build the bundled ``sample-lesions`` CT: the sample abdomen with three synthetic lesions.

The README's main command analyses it with the default model, so a first run shows what
findings look like. The lesions are made by the synthesis engine with fixed seeds (not used in
training); their ground-truth label map (lesion-type ids) ships next to the CT as
``sample-lesions-truth``. The sample is one of the default model's *training* scans, so this is a
demonstration, not a validation: the held-out numbers are in the model card.

    python Testing/tools/make_lesion_sample.py    # rewrites the two files; update their SHA256s in sample_data.py
"""

from __future__ import annotations

import dataclasses

import numpy as np

from PASTALib.io import sample_data
from PASTALib.lesions import lesion_types
from PASTALib.io.volume_io import read_volume, write_volume
from PASTASynthLib.engine import LesionRequest, synthesize
from PASTASynthLib.host import make_host

LESIONS = [  # type, size (mm), attributes, seed
    ("liver_tumor", [32.0], {"density": "hypodense", "margin": "well-defined"}, 7001),
    ("kidney_cyst", [24.0], {}, 7002),
    ("bone_metastasis", [22.0], {"density": "hyperdense"}, 7003),
]


def main() -> None:
    image = read_volume(sample_data.SAMPLES["sample"].path)
    organs = read_volume(sample_data.SAMPLES["sample-organs"].path)
    host = make_host(image, organs)
    truth = np.zeros(image.array.shape, np.uint8)
    current = host
    for key, size, attributes, seed in LESIONS:
        result = synthesize(current, LesionRequest(key, size_mm=size, attributes=attributes, seed=seed))
        truth[result.lesion_mask] = lesion_types.lookup(key).id
        current = dataclasses.replace(current, image=result.image)
        print(f"{key}: {int(result.lesion_mask.sum())} voxels, attributes {result.lesions[0].attributes}")
    out = sample_data.SAMPLE_DIR
    write_volume(current.image.with_array(current.image.array.astype(image.array.dtype)),
                 out / "abdomen_native_3mm_lesions_ct.nii.gz", overwrite=True)
    write_volume(image.with_array(truth), out / "abdomen_native_3mm_lesions_truth.nii.gz", overwrite=True)
    print("wrote", out)


if __name__ == "__main__":
    main()
