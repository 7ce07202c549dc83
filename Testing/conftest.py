"""Shared fixtures: synthetic geometries, the bundled sample, and a real slicer-core MRML scene."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "Data"
#: How far a world position may move through a NIfTI header (float32): 1e-4 mm.
FLOAT32_HEADER_MM = 1e-4
# The Slicer-side helpers are not pip-installed (they only run next to Slicer); import from source.
for module_dir in (REPO / "PASTA", REPO / "PASTASynth"):
    if str(module_dir) not in sys.path:
        sys.path.insert(0, str(module_dir))

from PASTALib.io.volume import Volume


@pytest.fixture(autouse=True, scope="session")
def _pasta_home_of_the_test_run(tmp_path_factory):
    """Runs measure their speed into ``$PASTA_HOME/timings.json``: the tests' go to a folder of their own,
    never the user's ~/.pasta (subprocesses inherit it)."""
    import os

    previous = os.environ.get("PASTA_HOME")
    os.environ["PASTA_HOME"] = str(tmp_path_factory.mktemp("pasta_home"))
    yield
    if previous is None:
        os.environ.pop("PASTA_HOME", None)
    else:
        os.environ["PASTA_HOME"] = previous


def pypi_reachable() -> bool:
    """Whether the Python Package Index answers (tests that resolve or fetch packages need it)."""
    import socket

    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


def rotation(ax: float, ay: float, az: float) -> np.ndarray:
    """A proper rotation from three angles in degrees (x, then y, then z)."""
    ax, ay, az = np.radians([ax, ay, az])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def ct_like_array(shape_kji: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """Air around a soft-tissue body with a bright 'bone', as int16 HU, plus noise."""
    rng = np.random.default_rng(seed)
    k, j, i = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape_kji], indexing="ij")
    body = (i**2 + j**2) < 0.6
    bone = (i**2 + (j + 0.3) ** 2) < 0.03
    array = np.full(shape_kji, -1000.0)
    array[body] = 40.0
    array[bone] = 700.0
    array += rng.normal(0, 10, shape_kji)
    return array.astype(np.int16)


GEOMETRIES = {
    "axial_lps": dict(spacing=(0.8, 0.8, 2.5), origin=(-120.5, -90.25, 33.0), direction=np.eye(3)),
    "ras_flipped": dict(spacing=(3.0, 3.0, 3.0), origin=(177.956, -11.319, 94.3018),
                        direction=np.diag([-1.0, -1.0, 1.0])),
    "oblique_anisotropic": dict(spacing=(0.7, 1.3, 3.1), origin=(12.25, -47.5, 101.125),
                                direction=rotation(17.0, -8.0, 31.0)),
    "oblique_tilted": dict(spacing=(1.1, 0.9, 5.0), origin=(-3.0, 250.0, -600.5),
                           direction=rotation(-25.0, 12.0, -70.0)),
}


@pytest.fixture(params=sorted(GEOMETRIES))
def ct_volume(request) -> Volume:
    """A CT-like volume on each test geometry (oblique and anisotropic included)."""
    geometry = GEOMETRIES[request.param]
    return Volume(ct_like_array((9, 11, 13), seed=len(request.param)), **geometry)


@pytest.fixture
def probe_indices() -> np.ndarray:
    """Voxel indices (i, j, k) whose world positions must survive every conversion."""
    return np.array([[0, 0, 0], [12, 10, 8], [3, 7, 5], [12, 0, 8], [6.5, 2.25, 4.75]])


@pytest.fixture(scope="session")
def sample_paths() -> dict[str, Path]:
    from PASTALib.io import sample_data

    return {name: sample.path for name, sample in sample_data.SAMPLES.items()}


@pytest.fixture
def mrml_scene():
    """A real MRML scene from slicer-core with the logics Slicer would attach."""
    import slicer
    from slicer import vtkMRMLScene, vtkSlicerSegmentationsModuleLogic

    scene = vtkMRMLScene()
    segmentations_logic = vtkSlicerSegmentationsModuleLogic()
    segmentations_logic.SetMRMLScene(scene)
    previous_scene = getattr(slicer, "mrmlScene", None)
    previous_modules = getattr(slicer, "modules", None)
    slicer.mrmlScene = scene
    slicer.modules = types.SimpleNamespace(
        segmentations=types.SimpleNamespace(logic=lambda: segmentations_logic))
    yield scene
    segmentations_logic.SetMRMLScene(None)
    scene.Clear(1)
    slicer.mrmlScene = previous_scene
    slicer.modules = previous_modules


@pytest.fixture(scope="session")
def dicom_series(tmp_path_factory) -> Path:
    """The DICOM sample with the study and series UIDs its anonymiser blanked, filled in (as a
    proper anonymiser replaces them). SOP instance UIDs stay blank: export restores them."""
    import pydicom
    from pydicom.uid import generate_uid

    folder = tmp_path_factory.mktemp("dicom") / "series"
    folder.mkdir()
    study, series = generate_uid(), generate_uid()
    for path in sorted((DATA / "example_ct_dicom").glob("*.dcm")):
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.save_as(folder / path.name)
    return folder


# ----------------------------------------------------------------- Slicer-side fixtures
@pytest.fixture(scope="module")
def analysis(tmp_path_factory) -> tuple[Path, Path]:
    """(model folder, output folder) of one real `python -m PASTALib analyze` run on the sample."""
    root = tmp_path_factory.mktemp("analysis")
    from slicer_scene import SAMPLE_CT, kidney_tumor_model

    model = kidney_tumor_model(root / "model")
    out = root / "out"
    result = subprocess.run([sys.executable, "-m", "PASTALib", "analyze", str(SAMPLE_CT), "--organs", "sample-organs",
                             "--model", str(model), "-o", str(out), "--device", "cpu", "--quiet"],
                            capture_output=True, text=True, cwd=REPO / "PASTA")
    assert result.returncode == 0, result.stderr
    return model, out


@pytest.fixture
def scene(mrml_scene):
    """The conftest scene plus the markups logic Slicer attaches (needed to save markups)."""
    from slicer import vtkMRMLSelectionNode, vtkSlicerMarkupsLogic

    selection = vtkMRMLSelectionNode()  # Slicer's application logic adds this singleton
    selection.SetSingletonTag("Singleton")
    mrml_scene.AddNode(selection)
    markups_logic = vtkSlicerMarkupsLogic()
    markups_logic.SetMRMLScene(mrml_scene)
    yield mrml_scene
    markups_logic.SetMRMLScene(None)


@pytest.fixture
def no_bundled_model(tmp_path, monkeypatch) -> Path:
    """This install's bundled default model folder, absent until a test puts one there."""
    from PASTALib.model import bundled_models

    folder = tmp_path / "bundled" / "pasta-default"
    monkeypatch.setitem(bundled_models.BUNDLED, "default", folder)
    return folder


def file_sha256(path: Path) -> str:
    """A file's SHA256, computed here rather than by the code under test."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A Slicer model cache of its own under ``$PASTA_HOME`` in the test's folder."""
    from PASTASlicerLib.model_registry import ModelCache

    monkeypatch.setenv("PASTA_HOME", str(tmp_path / "home"))
    return ModelCache()


@pytest.fixture
def bundled(no_bundled_model) -> Path:
    """The bundled default model as an install ships it: a model folder with its MODEL_CARD.md
    (here the tiny test model, its kidney class marked as kidney tumour)."""
    folder = shutil.copytree(DATA / "tiny_pasta_organs", no_bundled_model)
    card = json.loads((folder / "model.json").read_text())
    card["classes"][2]["lesion_type"] = "kidney_tumor"
    (folder / "model.json").write_text(json.dumps(card))
    (folder / "MODEL_CARD.md").write_text("# Model card: tiny-pasta-organs (test fixture)\n")
    return folder


@pytest.fixture(autouse=True)
def no_impossible_lesion_type(monkeypatch):
    """The invariant of PASTALib.lesions.type_rules, checked on every report any test builds in this
    process: a finding's type is one its organ can host."""
    from PASTALib.lesions import lesion_types
    from PASTALib.report import findings

    build = findings.analyse_segmentation

    def checked(*args, **kwargs):
        analysis = build(*args, **kwargs)
        for finding in analysis.report.findings:
            organ = lesion_types.BY_ID[finding.lesion_type.id].organ
            assert organ == finding.location.organ, (finding.id, finding.lesion_type.key, finding.location.organ)
        return analysis

    monkeypatch.setattr(findings, "analyse_segmentation", checked)
