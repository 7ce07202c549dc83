"""Bundled sample data, addressable by a stable name (``pasta info sample``).

The sample is a real native abdomen CT at 3 mm with its TotalSegmentator organ mask, from the
TotalSegmentator repository (Apache-2.0; see ``sample_data/ATTRIBUTION.md``); ``sample-lesions``
is the same scan with three synthetic lesions, for a first look at findings. It ships inside
the package so it is found the same way from a pip install, a source checkout and Slicer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from PASTALib.errors import PastaInputError
from PASTALib.hashing import sha256_file

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"


@dataclass(frozen=True)
class SampleFile:
    """One bundled file with its checksum, so a damaged install is detected, not trusted."""

    name: str
    filename: str
    sha256: str
    description: str
    mask_of: str | None = None
    labels_file: str | None = None  #: JSON label table beside the file, or "lesion-types" (the lesion-type table)
    organs: str | None = None  #: name of the organ mask of an image that shares another's mask

    @property
    def path(self) -> Path:
        return SAMPLE_DIR / self.filename

    def verify(self) -> bool:
        """True when the file is present and its SHA256 matches the registry."""
        return self.path.is_file() and sha256_file(self.path) == self.sha256


SAMPLES: dict[str, SampleFile] = {
    "sample": SampleFile(
        name="sample",
        filename="abdomen_native_3mm_ct.nii.gz",
        sha256="dbd3ae6d614d1d7ef3a46925c30c70038ed52da6b37fdd6afdc7b9b71387e3e1",
        description="Abdomen + pelvis CT, native (non-contrast), 122x101x112 at 3 mm, male.",
    ),
    "sample-organs": SampleFile(
        name="sample-organs",
        filename="abdomen_native_3mm_organs.nii.gz",
        sha256="e8097758e56e73099075b6caaebce23ef11bc6fad66a4ec3753b9406846558c7",
        description="TotalSegmentator v2 organ mask of 'sample' (61 labels; model output, "
        "not manual ground truth).",
        mask_of="sample",
        labels_file="totalsegmentator_v2_classes.json",
    ),
    "sample-lesions": SampleFile(
        name="sample-lesions",
        filename="abdomen_native_3mm_lesions_ct.nii.gz",
        sha256="5b1953c1a1a0b6397db4f67e7a620b3a46acc05cf768584e2a894439112ad5f7",
        description="'sample' with three synthetic lesions (liver tumour, kidney cyst, sclerotic bone "
        "metastasis; Testing/tools/make_lesion_sample.py). Synthetic, for demonstration.",
        organs="sample-organs",
    ),
    "sample-lesions-truth": SampleFile(
        name="sample-lesions-truth",
        filename="abdomen_native_3mm_lesions_truth.nii.gz",
        sha256="8eef92388c1b3b22f509540226f6f334f0177eb3476f196e982c5a3cdfc8b504",
        description="Ground truth of 'sample-lesions': the synthetic lesions' voxels as PASTA lesion-type ids.",
        labels_file="lesion-types",
    ),
}


def sample_mask_for(name: str) -> SampleFile | None:
    """The organ mask registered for sample ``name``, if any."""
    image = SAMPLES.get(name)
    if image is not None and image.organs:
        return SAMPLES[image.organs]
    return next((s for s in SAMPLES.values() if s.mask_of == name), None)


def resolve(name_or_path: str) -> tuple[Path, SampleFile | None]:
    """Map a sample name to its bundled file; any other string is taken as a path."""
    sample = SAMPLES.get(name_or_path)
    if sample is None:
        return Path(name_or_path).expanduser(), None
    if not sample.verify():
        raise PastaInputError(
            f"The bundled sample '{sample.name}' is missing or damaged ({sample.path}).",
            "Reinstall PASTA (pip install --force-reinstall) or restore the file from the repository.",
        )
    return sample.path, sample


def load_label_names(path: str | Path) -> dict[int, str]:
    """Read a ``{"id": "name"}`` JSON label table (TotalSegmentator style)."""
    path = Path(path)
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
        return {int(key): str(value) for key, value in table.items()}
    except (OSError, ValueError, AttributeError) as exc:
        raise PastaInputError(
            f"Cannot read label names from {path}: {exc}.",
            'Give a JSON object mapping label ids to names, e.g. {"5": "liver"}.',
        ) from None
