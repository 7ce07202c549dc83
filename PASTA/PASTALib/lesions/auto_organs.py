"""``--organs auto``: organs from the TotalSegmentator package, when it and its fast model are installed.

PASTA never installs TotalSegmentator nor downloads its weights: both are the user's explicit
step. Without them the request fails with what to do; it never falls back silently to no organs.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from PASTALib.errors import PastaInputError
from PASTALib.io.volume import Volume

AUTO = "auto"
#: TotalSegmentator v2's fast (3 mm) "total" model, as its weights folder is named
FAST_MODEL_FOLDER = "Dataset297_TotalSegmentator_total_3mm_1559subj"


def weights_folder() -> Path:
    """Where TotalSegmentator keeps its weights ($TOTALSEG_HOME_DIR, else ~/.totalsegmentator)."""
    home = os.environ.get("TOTALSEG_HOME_DIR")
    return (Path(home) if home else Path.home() / ".totalsegmentator") / "nnunet" / "results"


def fast_model_present(folder: Path | None = None) -> bool:
    return (Path(folder) if folder else weights_folder()).joinpath(FAST_MODEL_FOLDER).is_dir()


def totalsegmentator_organs(image: Volume) -> tuple[Volume, list[str]]:
    """The 117-class organ labels of ``image`` by TotalSegmentator's fast model (on the image grid)."""
    try:
        from totalsegmentator.python_api import totalsegmentator
    except ImportError:
        raise PastaInputError("--organs auto runs TotalSegmentator, which is not installed.",
                              "Install it (pip install TotalSegmentator) and fetch its fast model once "
                              "(TotalSegmentator -i CT -o OUT --fast), or pass --organs with an organ mask "
                              "(a TotalSegmentator label map or a Slicer .seg.nrrd).") from None
    if not fast_model_present():
        raise PastaInputError(f"--organs auto needs TotalSegmentator's fast model, which is not in "
                              f"{weights_folder()} (PASTA downloads nothing without your consent).",
                              "Run TotalSegmentator once with --fast to fetch it (about 140 MB), or pass "
                              "--organs with an organ mask.")
    from PASTALib.io.resample import Interpolation, resample_to_reference
    from PASTALib.io.volume_io import read_volume, write_volume

    with tempfile.TemporaryDirectory(prefix="pasta-organs-") as tmp:
        source, target = Path(tmp) / "ct.nii.gz", Path(tmp) / "organs.nii.gz"
        write_volume(image, source)
        try:
            totalsegmentator(str(source), str(target), ml=True, fast=True, quiet=True)
        except Exception as error:  # TotalSegmentator's own failures (memory, weights), named for the user
            raise PastaInputError(f"TotalSegmentator failed: {error}",
                                  "Run it yourself and pass its output with --organs.") from None
        organs = read_volume(target)
    if not image.has_same_geometry(organs, image.grid_tolerance_mm):
        organs = resample_to_reference(organs, image, Interpolation.NEAREST, default_value=0)
    return organs, ["Organs by TotalSegmentator's fast (3 mm) model, run by --organs auto."]
