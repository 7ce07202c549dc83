"""Where training cases come from: lesions synthesised on the fly into healthy hosts, or labelled pairs.

Every source hands out :class:`TrainingCase` objects already on the model's grid (resampled once,
in world space), with one entry per lesion so the patch sampler can over-sample lesions and the
attribute heads know which voxels a report describes. Online synthesis draws a new lesion for
every case (the tumour-synthesis literature found fresh lesions per batch best); its report
attributes become the attribute heads' labels.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Protocol, Sequence

import numpy as np
from scipy import ndimage

from PASTALib.errors import PastaInputError
from PASTALib.io.resample import Interpolation, resample_to_reference, resample_to_spacing
from PASTALib.io.volume import Volume
from PASTALib.io.volume_io import VOLUME_SUFFIXES, images_and_masks, read_volume
from PASTALib.lesions import lesion_types
from PASTALib.lesions.vocabulary import report_attributes
from PASTALib.model.card import ClassInfo

log = logging.getLogger(__name__)




@dataclass
class LesionInfo:
    box: tuple[slice, slice, slice]  #: on the case grid
    mask: np.ndarray  #: bool, box-local
    class_id: int
    attributes: Optional[dict[str, str]] = None  #: report vocabulary, when known


@dataclass
class TrainingCase:
    name: str
    image: np.ndarray  #: HU, float32, [k, j, i] on the model grid
    labels: np.ndarray  #: uint8 class ids
    lesions: list[LesionInfo] = field(default_factory=list)


class CaseSource(Protocol):
    classes: list[ClassInfo]

    def draw(self, rng: np.random.Generator) -> TrainingCase: ...

    def foreground_hu(self) -> np.ndarray: ...


# ------------------------------------------------------------------------------------ hosts
@dataclass
class HostScan:
    name: str
    image: Volume
    organs: Optional[Volume]  #: TotalSegmentator v2 labels; None = lung by thresholding


def find_hosts(specs: Iterable[str]) -> list[HostScan]:
    """``sample`` (bundled CT + organ mask), a host folder (image + optional organ mask), or a
    folder of host folders."""
    from PASTALib.io import sample_data

    hosts: list[HostScan] = []
    for spec in specs:
        if spec == "sample":
            hosts.append(HostScan("sample", read_volume(sample_data.SAMPLES["sample"].path),
                                  read_volume(sample_data.SAMPLES["sample-organs"].path)))
            continue
        folder = Path(spec).expanduser()
        if not folder.is_dir():
            raise PastaInputError(f"Host {spec} is not a folder.",
                                  "Give host folders (one CT + optional organ mask each), or 'sample'.")
        images, masks = images_and_masks(folder)
        if images:
            folders = [folder]
        else:
            folders = [p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")]
        for host_folder in folders:
            images, masks = images_and_masks(host_folder)
            if len(images) != 1 or len(masks) > 1:
                raise PastaInputError(
                    f"Host folder {host_folder} needs one image and at most one organ mask; found images "
                    f"{[p.name for p in images]} and masks {[p.name for p in masks]}.",
                    "Name the mask with 'total', 'organ', 'seg' or 'mask' in it (e.g. total.nii.gz).")
            hosts.append(HostScan(host_folder.name, read_volume(images[0]),
                                  read_volume(masks[0]) if masks else None))
    if not hosts:
        raise PastaInputError("No host scans were given.", "Pass --hosts sample or host folders.")
    return hosts


def to_model_grid(image: Volume, spacing_xyz: Sequence[float], labels: Optional[Volume] = None
                  ) -> tuple[Volume, Optional[Volume]]:
    """The CT (linear) and a label map (nearest) on one grid at the model's spacing."""
    resampled = resample_to_spacing(image, tuple(spacing_xyz), Interpolation.LINEAR, default_value=-1024.0)
    resampled = resampled.with_array(resampled.array.astype(np.float32))
    if labels is None:
        return resampled, None
    return resampled, resample_to_reference(labels, resampled, Interpolation.NEAREST, default_value=0)


# ------------------------------------------------------------------------------------ synthesis
class SyntheticSource:
    """Lesions of the chosen types synthesised into healthy hosts, a new one for every case."""

    def __init__(self, hosts: Sequence[HostScan], spacing_xyz: Sequence[float],
                 types: Optional[Sequence[str]] = None, max_lesions: int = 2, skip_missing: bool = False) -> None:
        """``skip_missing``: leave out types no host can take (validation hosts) instead of failing;
        class ids always follow ``types`` so they match the training run's."""
        from PASTASynthLib.host import make_host

        self.max_lesions = max_lesions
        self.hosts = []
        for scan in hosts:
            image, organs = to_model_grid(scan.image, spacing_xyz, scan.organs)
            self.hosts.append((scan.name, make_host(image, organs)))
        keys = [lesion_types.lookup(t).key for t in types] if types else [t.key for t in lesion_types.LESION_TYPES]
        self.classes = [ClassInfo(0, "background")] + [
            ClassInfo(i + 1, lesion_types.BY_KEY[k].name, k) for i, k in enumerate(keys)]
        self.class_of = {k: i + 1 for i, k in enumerate(keys)}
        self.hosts_for: dict[str, list] = {}
        from PASTASynthLib.catalog import spec_for

        for key in keys:
            self.hosts_for[key] = [(n, h) for n, h in self.hosts if h.labels_for(spec_for(key))]
        missing = [k for k, v in self.hosts_for.items() if not v]
        if skip_missing:
            for key in missing:
                del self.hosts_for[key]
        elif missing:
            raise PastaInputError(f"No host has the organ for: {', '.join(missing)}.",
                                  "Add hosts whose organ mask contains those organs, or leave those types out "
                                  "(--lesion-types).")

    @property
    def types(self) -> list[str]:
        """The lesion types this source can draw."""
        return list(self.hosts_for)

    def foreground_hu(self, cases_per_type: int = 8, seed: int = 12345) -> np.ndarray:
        """HU of synthesised lesions (nnU-Net's foreground: the labelled voxels), so the intensity
        clip keeps the lesions' range; organ masks would include the lung and stretch it to air,
        which squeezed soft-tissue contrast and stalled learning in our first runs."""
        rng = np.random.default_rng(seed)
        values = []
        for key in self.types:
            for _ in range(cases_per_type):
                case = self.draw(rng, key)
                values.append(case.image[case.labels > 0])
        return np.concatenate(values).astype(np.float32)

    def draw(self, rng: np.random.Generator, lesion_type: Optional[str] = None, seed: Optional[int] = None
             ) -> TrainingCase:
        """One case: a uniformly chosen type (or ``lesion_type``), host and seed."""
        from PASTASynthLib.engine import LesionRequest, synthesize

        key = lesion_type or list(self.hosts_for)[int(rng.integers(len(self.hosts_for)))]
        candidates = self.hosts_for[key]
        failures = []
        for _ in range(4):
            name, host = candidates[int(rng.integers(len(candidates)))]
            case_seed = int(rng.integers(2**31)) if seed is None else seed + len(failures)
            count = int(rng.integers(1, self.max_lesions + 1))
            try:
                result = synthesize(host, LesionRequest(key, count=count, seed=case_seed))
            except PastaInputError as exc:  # e.g. a large size that does not fit this host
                failures.append(str(exc))
                continue
            class_id = self.class_of[key]
            labels = np.zeros(result.lesion_mask.shape, np.uint8)
            labels[result.lesion_mask] = class_id
            lesions = [LesionInfo(lesion.box.slices, lesion.mask.copy(), class_id,
                                  report_attributes(lesion.attributes)) for lesion in result.lesions]
            return TrainingCase(f"{name}/{key}/{case_seed}", result.image.array.astype(np.float32), labels, lesions)
        raise PastaInputError(f"Could not synthesise a {key} lesion: {failures[-1]}")


def validation_cases(hosts: Sequence[HostScan], spacing_xyz: Sequence[float], keys: Sequence[str], seed: int,
                     per_type: int, stream: int = 7919, first_seed: int = 100_000
                     ) -> tuple[list[TrainingCase], list[str]]:
    """Fixed validation lesions: ``per_type`` per type the hosts can take, seeds derived from
    ``seed`` only, so the model card's numbers can be reproduced (and tested) later.

    ``stream`` and ``first_seed`` give other fixed sets, e.g. new lesions in a training host
    (training draws its synthesis seeds at random from 2^31, so it practically never meets them)."""
    source = SyntheticSource(hosts, spacing_xyz, keys, skip_missing=True)
    cases = []
    for index, key in enumerate(source.types):
        for number in range(per_type):
            rng = np.random.default_rng([seed, stream, index, number])
            cases.append(source.draw(rng, key, seed=first_seed + 1000 * index + 10 * number))
    return cases, source.types


# ------------------------------------------------------------------------------------ labelled data
def lesions_from_labels(labels: np.ndarray) -> list[LesionInfo]:
    """Connected components of every class (26-connected), for lesion over-sampling."""
    lesions = []
    for value in [int(v) for v in np.unique(labels) if v > 0]:
        components, count = ndimage.label(labels == value, structure=np.ones((3, 3, 3)))
        for index, box in enumerate(ndimage.find_objects(components), start=1):
            if box is not None:
                lesions.append(LesionInfo(box, components[box] == index, value))
    return lesions


def find_pairs(folder: Path) -> list[tuple[str, Path, Path, Optional[int]]]:
    """(name, image, labels, lesion type id) from ``imagesTr``/``labelsTr`` (nnU-Net raw),
    ``images``/``labels``, or PASTA-Gen-30K case folders (``img.nii.gz`` + ``label.nii.gz``)."""
    for images_name, labels_name in (("imagesTr", "labelsTr"), ("images", "labels")):
        images_dir, labels_dir = folder / images_name, folder / labels_name
        if images_dir.is_dir() and labels_dir.is_dir():
            pairs = []
            for label in sorted(p for p in labels_dir.iterdir() if p.name.lower().endswith(VOLUME_SUFFIXES)):
                stem = next(label.name[: -len(s)] for s in VOLUME_SUFFIXES if label.name.lower().endswith(s))
                matches = [p for p in images_dir.iterdir() if p.name.startswith(stem)
                           and p.name[len(stem):].lstrip("_0").split(".")[0] == ""]
                if len(matches) != 1:
                    raise PastaInputError(f"Label {label.name} has {len(matches)} matching images in {images_dir}.",
                                          "Name images like their labels (nnU-Net's _0000 suffix is accepted).")
                pairs.append((stem, matches[0], label, None))
            return pairs
    cases = sorted(p.parent for p in folder.rglob("label.nii.gz") if (p.parent / "img.nii.gz").is_file())
    pairs = []
    for case in cases:
        type_id = None
        report = case / "report.json"
        if report.is_file():
            findings = json.loads(report.read_text(encoding="utf-8")).get("findings", [])
            if findings:
                type_id = int(findings[0]["lesion_type"]["id"])
        if type_id is None:
            folder_name = f"{case.parent.parent.name}/{case.parent.name}"
            type_id = next((t.id for t in lesion_types.LESION_TYPES if t.folder == folder_name), None)
        if type_id is None:
            raise PastaInputError(f"Cannot tell the lesion type of PASTA-Gen case {case}.",
                                  "Keep its report.json or the Organ/Type/<case> folder layout.")
        pairs.append((case.name, case / "img.nii.gz", case / "label.nii.gz", type_id))
    if not pairs:
        raise PastaInputError(f"No labelled cases in {folder}.",
                              "Use imagesTr/labelsTr, images/labels, or PASTA-Gen-30K case folders.")
    return pairs


class LabelledSource:
    """Image + label pairs, resampled once to the model grid and kept in memory (few-shot sizes)."""

    def __init__(self, folders: Sequence[Path], spacing_xyz: Sequence[float]) -> None:
        self.cases: list[TrainingCase] = []
        pasta_gen_types: set[int] = set()
        raw: list[tuple[str, Volume, Volume, Optional[int]]] = []
        for folder in folders:
            for name, image_path, label_path, type_id in find_pairs(Path(folder).expanduser()):
                image, labels = read_volume(image_path), read_volume(label_path)
                if image.geometry_differences(labels, image.grid_tolerance_mm):
                    raise PastaInputError(f"{label_path} does not share the grid of {image_path}: "
                                          + "; ".join(image.geometry_differences(labels)),
                                          "Resample the labels onto the image first (pasta convert --like).")
                raw.append((name, image, labels, type_id))
                if type_id is not None:
                    pasta_gen_types.add(type_id)
        if pasta_gen_types:  # PASTA-Gen: label 2 = lesion of the case's type, 1 = organ (background here)
            ordered = sorted(pasta_gen_types)
            self.classes = [ClassInfo(0, "background")] + [
                ClassInfo(i + 1, lesion_types.BY_ID[t].name, lesion_types.BY_ID[t].key) for i, t in enumerate(ordered)]
            remap = {t: i + 1 for i, t in enumerate(ordered)}
        else:
            values = sorted({int(v) for _, _, lab, _ in raw for v in np.unique(lab.array)})
            if values != list(range(len(values))):
                raise PastaInputError(f"Label values {values} are not consecutive from 0.",
                                      "Number classes 0 (background), 1, 2, ...")
            self.classes = [ClassInfo(v, "background" if v == 0 else f"class {v}") for v in values]
            remap = {}
        for name, image, labels, type_id in raw:
            grid, on_grid = to_model_grid(image, spacing_xyz, labels)
            array = np.rint(on_grid.array).astype(np.uint8)
            if type_id is not None:
                array = np.where(array == 2, remap[type_id], 0).astype(np.uint8)
            self.cases.append(TrainingCase(name, grid.array, array, lesions_from_labels(array)))

    def foreground_hu(self) -> np.ndarray:
        return np.concatenate([c.image[c.labels > 0] for c in self.cases]).astype(np.float32)

    def draw(self, rng: np.random.Generator) -> TrainingCase:
        return self.cases[int(rng.integers(len(self.cases)))]
