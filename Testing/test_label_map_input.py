"""A label map is whole numbers from 0 up: anything else is the wrong file, refused with exit 2.

Before (issue 20): the CT passed as ``--organs`` ended in an internal error (exit 1), and ``pasta
synth`` silently rounded a fractional float mask that ``pasta info`` and ``pasta report`` refused.
"""

from __future__ import annotations

import numpy as np
import pytest

from PASTALib.errors import PastaInputError
from PASTALib.io.input_checks import check_label_map
from PASTALib.io.volume import Volume
from PASTALib.io.volume_io import write_volume
from PASTALib.lesions.organ_masks import read_organ_mask
from PASTASynthLib.cli_synth import load_host


def test_a_ct_is_not_an_organ_mask(tmp_path):
    ct = tmp_path / "ct.nii.gz"
    write_volume(Volume(np.full((6, 7, 8), -1000, np.int16)), ct)
    with pytest.raises(PastaInputError, match="looks like a CT image, not a segmentation") as error:
        read_organ_mask(ct)
    assert "not the CT" in error.value.hint


def test_fractional_masks_are_refused_everywhere_not_rounded(tmp_path):
    organs = tmp_path / "organs.nii.gz"
    write_volume(Volume(np.full((6, 7, 8), 5.4, np.float32)), organs)
    with pytest.raises(PastaInputError, match="non-integer values"):
        read_organ_mask(organs)
    with pytest.raises(PastaInputError, match="non-integer values"):
        load_host("sample", str(organs))  # pasta synth's host loading


@pytest.mark.parametrize("array", [np.zeros((3, 4, 5), np.uint8), np.full((3, 4, 5), 7.0, np.float32)])
def test_whole_non_negative_labels_pass(array):
    check_label_map(Volume(array))
