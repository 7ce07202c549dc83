"""AnalysisOptions is the one definition of an analysis run's options: the ``pasta analyze`` parser is
built from it, and the Slicer module's command line is the object written out and read back unchanged."""

from __future__ import annotations

import dataclasses

import pytest

from PASTALib.analysis.options import AnalysisOptions
from PASTALib.cli.main import build_parser

EVERY_FIELD_CHANGED = AnalysisOptions(
    image="ct.nrrd", output="out dir", model="my model", no_attribute_heads=True, lesion_type="liver_tumor", sensitivity="high",
    organs="organs.nii.gz", min_volume=0.5, dicom=True, force=True, overwrite=True, head=["a.json", "b.json"],
    device="cpu", tta=True, overlap=0.25, batch_size=2, precision="bf16", threads=3, folds=[0, 2],
    checkpoint="best", pasta_defaults=True, whole_volume=True)


def analyze_parser():
    parser = build_parser()
    return parser._subparsers._group_actions[0].choices["analyze"]


def test_every_field_differs_from_its_default_in_the_round_trip_case():
    default = AnalysisOptions()
    assert all(getattr(EVERY_FIELD_CHANGED, f.name) != getattr(default, f.name)
               for f in dataclasses.fields(AnalysisOptions))


@pytest.mark.parametrize("options", [EVERY_FIELD_CHANGED, AnalysisOptions(image="ct.nrrd", output="out"),
                                     AnalysisOptions(image="ct.nrrd", output="out", tta=False)])
def test_options_survive_the_command_line(options):
    args = build_parser().parse_args(options.to_argv())
    assert AnalysisOptions.from_args(args) == options


def test_defaults_write_a_short_command_line():
    assert AnalysisOptions(image="ct.nrrd", output="out").to_argv() == ["analyze", "ct.nrrd", "-o", "out"]


def test_the_analyze_parser_has_no_option_outside_the_table():
    common = {"help", "progress", "quiet", "verbose"}
    dests = {action.dest for action in analyze_parser()._actions} - common
    assert dests == {f.name for f in dataclasses.fields(AnalysisOptions)}
