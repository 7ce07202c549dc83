"""Adding a lesion type is one row in the lesion table plus its synthesis spec.

A 16th type added at run time (:func:`PASTALib.lesions.lesion_types.register`, a test-only row with a
private code) reaches ``pasta info``, ``pasta synth --lesion list``, the report, the DICOM SEG codes and
both Slicer modules' type lists; without the row, none of them shows it.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from PASTALib.lesions import lesion_types
from PASTALib.lesions.codes import Concept
from PASTALib.lesions.lesion_types import LesionType

KEY, NAME = "test_liver_nodule", "Test liver nodule"
#: DICOM allows private coding schemes named 99...: a made-up type gets a made-up, clearly private code.
CODE = Concept("PASTA-T16", "99PASTA", "Test liver nodule")
COLOR = (0.10, 0.90, 0.10)

#: What a developer adds: the row, and its synthesis parameters (here the liver cyst's, renamed).
ADD_THE_TYPE = textwrap.dedent(f"""
    import dataclasses
    from PASTALib.lesions import lesion_types
    from PASTALib.lesions.codes import Concept
    from PASTASynthLib import catalog
    lesion_types.register(lesion_types.LesionType(
        len(lesion_types.LESION_TYPES) + 1, {KEY!r}, {NAME!r}, "liver", False, Concept{tuple(CODE.__dict__.values())!r},
        None, "Liver/TestNodule", {COLOR!r}))
    catalog.SPECS[{KEY!r}] = dataclasses.replace(catalog.SPECS["liver_cyst"], key={KEY!r})
""")


@pytest.fixture
def sixteenth_type():
    from PASTASynthLib import catalog

    row = LesionType(len(lesion_types.LESION_TYPES) + 1, KEY, NAME, "liver", False, CODE, None, "Liver/TestNodule",
                     COLOR)
    lesion_types.register(row)
    catalog.SPECS[KEY] = dataclasses.replace(catalog.SPECS["liver_cyst"], key=KEY)
    try:
        yield row
    finally:
        del catalog.SPECS[KEY]
        lesion_types.unregister(KEY)


def pasta(args: list[str], with_new_type: bool) -> subprocess.CompletedProcess:
    code = (ADD_THE_TYPE if with_new_type else "") + f"from PASTALib.cli.main import main\nraise SystemExit(main({args!r}))\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def lesion_map_with_label_16(tmp_path_factory):
    from PASTALib.io import sample_data
    from PASTALib.io.volume_io import read_volume, write_volume

    image = read_volume(sample_data.SAMPLES["sample"].path)
    labels = np.zeros(image.array.shape, np.uint8)
    labels[40:44, 50:54, 40:44] = 16
    path = tmp_path_factory.mktemp("labels") / "lesions.nii.gz"
    write_volume(image.with_array(labels), path)
    return path


@pytest.mark.parametrize("with_new_type", [True, False])
@pytest.mark.slow
def test_pasta_info_and_synth_list_name_the_new_type(lesion_map_with_label_16, with_new_type):
    info = pasta(["info", "sample", "--mask", str(lesion_map_with_label_16), "--labels", "lesion-types", "--json",
                  "--progress", "none"], with_new_type)
    assert info.returncode == 0, info.stderr
    (label,) = json.loads(info.stdout)["mask"]["labels"]
    assert label["id"] == 16 and (label.get("name") == NAME) == with_new_type
    listing = pasta(["synth", "--lesion", "list", "--progress", "none"], with_new_type)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert any(line.startswith(f"16 {KEY} ") for line in lines) == with_new_type
    assert any(line.startswith("15 kidney_stone ") for line in lines)


def test_the_report_and_dicom_seg_carry_the_new_type(sixteenth_type, dicom_series, tmp_path):
    import highdicom as hd
    import jsonschema

    from PASTALib.io.volume_io import read_volume
    from PASTALib.report.dicom_export import export_dicom
    from PASTALib.report.findings import analyse_segmentation
    from PASTALib.report.model import SCHEMA_PATH

    image = read_volume(dicom_series)
    labels = np.zeros(image.array.shape, np.uint8)
    labels[8:12, 250:270, 160:180] = sixteenth_type.id
    analysis = analyse_segmentation(image, image.with_array(labels))
    (finding,) = analysis.report.findings
    assert (finding.lesion_type.id, finding.lesion_type.key, finding.lesion_type.name) == (16, KEY, NAME)
    assert finding.lesion_type.code.value == CODE.value and finding.staging.value is None  # benign: not staged
    jsonschema.validate(analysis.report.to_dict(), json.loads(SCHEMA_PATH.read_text()))
    written = export_dicom(analysis.report, image, analysis.mask, tmp_path)
    description = hd.seg.segread(written["seg"]).get_segment_description(1)
    assert description.segmented_property_type.value == CODE.value
    assert description.segmented_property_type.scheme_designator == CODE.scheme


def test_both_modules_list_the_new_type_and_colour_its_segments(sixteenth_type):
    from types import SimpleNamespace

    from PASTASlicerLib.results_import import segment_color
    from PASTASynthSlicerLib.choices import lesion_types as synth_choices

    assert lesion_types.keys()[-1] == KEY  # the PASTA module's choices are [FROM_MODEL, *keys()]
    assert synth_choices()[-1] == (KEY, NAME)
    assert segment_color(SimpleNamespace(lesion_type=SimpleNamespace(key=KEY))) == COLOR


def test_the_table_refuses_duplicate_or_gapped_ids():
    row = lesion_types.BY_KEY["kidney_stone"]
    with pytest.raises(ValueError, match="already"):
        lesion_types.register(row)
    with pytest.raises(ValueError, match="consecutive"):
        lesion_types.register(dataclasses.replace(row, id=40, key="gap"))
    assert len(lesion_types.LESION_TYPES) == len(lesion_types.BY_ID) == len(lesion_types.BY_KEY)
