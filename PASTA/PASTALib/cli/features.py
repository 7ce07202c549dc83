"""``pasta features``: PASTA encoder features per finding and per organ, for one case or a cohort.

One case: ``pasta features IMAGE --seg SEG [--organs ORGANS] --model MODEL -o features.csv``, or
``--findings OUTDIR`` instead of ``--seg`` for the findings of a ``pasta analyze`` output folder.
A cohort: ``pasta features --manifest cases.csv --model MODEL -o features.csv``, where the manifest
has columns ``image`` and ``seg`` and/or ``organs`` (optional ``case`` and ``lesion_type``; paths
relative to the manifest's folder). The model is loaded once for every case.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from PASTALib.errors import PastaInputError
from PASTALib.io import sample_data
from PASTALib.progress import ProgressReporter

from .command import Command

log = logging.getLogger(__name__)


@dataclass
class Case:
    case: str
    image: str
    seg: Optional[str]
    organs: Optional[str]
    findings: Optional[str]
    lesion_type: Optional[str]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", nargs="?", help="the CT: a file, a DICOM series folder, or 'sample' "
                        "(leave out with --manifest)")
    parser.add_argument("--seg", help="lesion label map (PASTA lesion-type ids, or 0/1 with --lesion-type): one "
                        "feature row per finding, numbered F1, F2, ... as in `pasta report`")
    parser.add_argument("--findings", metavar="OUTDIR", help="instead of --seg: a `pasta analyze` output folder; "
                        "one row per finding of its report.json, from its findings.nii.gz")
    parser.add_argument("--organs", help="TotalSegmentator v2 organ mask: one feature row per organ (see "
                        "--organ-names); also places findings as `pasta report` does")
    parser.add_argument("--organ-names", default="all", metavar="NAMES",
                        help="comma-separated organ names or ids to featurise, 'all' (default: every organ in "
                        "the mask) or 'none'")
    parser.add_argument("--manifest", metavar="CSV", help="featurise a cohort: a CSV with columns image, and seg "
                        "(or findings) and/or organs, optional case and lesion_type (paths relative to the CSV)")
    parser.add_argument("--case-id", help="case id for a single image (default: the image file name)")
    parser.add_argument("--model", required=True, help="a PASTA model folder, an nnU-Net v2 results folder or a "
                        "checkpoint file; features come from its encoder")
    parser.add_argument("--pasta-defaults", action="store_true", help="a bare weights file (e.g. PASTA_final.pth) "
                        "with PASTA's pretraining preprocessing; without it such a file is refused, not guessed")
    parser.add_argument("-o", "--output", required=True, help="features CSV to write")
    parser.add_argument("--lesion-type", help="lesion type of a binary (0/1) --seg: id or key")
    parser.add_argument("--min-volume", type=float, default=None, metavar="ML", help="drop smaller findings "
                        "(default: as `pasta report`)")
    crops = parser.add_argument_group("crops (PASTA's defaults; a head remembers and reuses them)")
    crops.add_argument("--lesion-crop", type=int, default=96, metavar="N", help="lesion crop size (default 96)")
    crops.add_argument("--organ-crop", type=int, default=128, metavar="N", help="organ crop size (default 128)")
    crops.add_argument("--lesion-margin", type=int, default=2, metavar="VOXELS",
                       help="1 mm voxels around a lesion's box (default 2)")
    crops.add_argument("--organ-margin", type=int, default=32, metavar="VOXELS",
                       help="1 mm voxels around an organ's box (default 32)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where the encoder runs (default: the GPU when PyTorch sees one)")
    parser.add_argument("--batch-size", type=int, default=2, help="crops per forward pass (default 2)")
    parser.add_argument("--threads", type=int, help="CPU threads for PyTorch")
    parser.add_argument("--force", action="store_true", help="run even if an image does not look like CT in HU")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def _case_name(image: str) -> str:
    name = Path(image).name
    return re.sub(r"(\.nii\.gz|\.nii|\.nrrd|\.mha|\.mhd|\.dcm)$", "", name, flags=re.IGNORECASE) or "case"


def read_manifest(path: Path) -> list[Case]:
    """The cases of a manifest CSV, paths made absolute; duplicate case ids are refused."""
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    except OSError as exc:
        raise PastaInputError(f"Cannot read the manifest {path}: {exc.strerror or exc}.") from None
    if not rows or "image" not in rows[0] or not ({"seg", "findings", "organs"} & set(rows[0])):
        raise PastaInputError(f"The manifest {path} needs a header with 'image' and 'seg' (or 'findings') and/or "
                              "'organs', and one row per case.", "Example header: case,image,seg,organs")

    def where(value: Optional[str]) -> Optional[str]:
        value = (value or "").strip()
        if not value:
            return None
        return value if value in sample_data.SAMPLES else str((path.parent / value).expanduser())

    cases = []
    for row in rows:
        image = where(row.get("image"))
        if image is None:
            raise PastaInputError(f"{path}: a row has no image.", "Every row names an image.")
        cases.append(Case((row.get("case") or "").strip() or _case_name(image), image, where(row.get("seg")),
                          where(row.get("organs")), where(row.get("findings")),
                          (row.get("lesion_type") or "").strip() or None))
    ids = [c.case for c in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise PastaInputError(f"{path}: case ids occur more than once: {', '.join(duplicates[:5])}.",
                              "Add a unique 'case' column.")
    return cases


def _cases(args: argparse.Namespace) -> list[Case]:
    if args.manifest:
        if args.image or args.seg or args.organs or args.findings:
            raise PastaInputError("Give either --manifest or IMAGE with --seg/--findings/--organs, not both.")
        return read_manifest(Path(args.manifest).expanduser())
    if not args.image:
        raise PastaInputError("No image given.", "Pass IMAGE with --seg and/or --organs, or --manifest CSV.")
    return [Case(args.case_id or _case_name(args.image), args.image, args.seg, args.organs, args.findings,
                 args.lesion_type)]


def _organ_names(text: str) -> Optional[list[str]]:
    if text.strip().lower() == "all":
        return None
    if text.strip().lower() == "none":
        return []
    return [name.strip() for name in text.split(",") if name.strip()]


def run_features(args: argparse.Namespace, progress: ProgressReporter) -> int:
    from PASTALib.heads.feature_table import FeatureTable, empty, write_csv
    from PASTALib.heads.features import (
        CropSettings,
        FeatureExtractor,
        analysis_items,
        finding_items,
        organ_items,
    )
    from PASTALib.io.input_checks import assess_ct, check_image, intensity_stats, require_ct
    from PASTALib.io.volume_io import read_volume
    from PASTALib.model.checkpoints import load_model

    out = Path(args.output).expanduser()
    if out.exists() and not args.overwrite:
        raise PastaInputError(f"{out} already exists; PASTA never overwrites a file unless asked.",
                              "Choose another output name or pass --overwrite.")
    cases = _cases(args)
    if any(c.seg is None and c.findings is None and c.organs is None for c in cases):
        raise PastaInputError("Nothing to featurise: give a lesion label map (--seg) or an analysis folder "
                              "(--findings), and/or an organ mask (--organs), for every case.")
    both = [c.case for c in cases if c.seg and c.findings]
    if both:
        raise PastaInputError(f"Case {both[0]} has both a lesion label map and an analysis folder.",
                              "Give one of them: --seg or --findings.")
    organ_names = _organ_names(args.organ_names)
    if organ_names and any(c.organs is None for c in cases):
        raise PastaInputError(f"--organ-names {args.organ_names} needs an organ mask for every case.",
                              "Pass --organs (or an 'organs' column in the manifest).")
    settings = CropSettings(args.lesion_crop, args.organ_crop, args.lesion_margin, args.organ_margin)
    model = load_model(args.model, pasta_defaults=args.pasta_defaults)
    extractor = FeatureExtractor(model, args.device, settings, args.batch_size, args.threads)
    log.info("features: model %s (%d features, weights %s…) on %s", extractor.model_name, extractor.dimension,
             extractor.model_sha256[:12], extractor.device)
    table = empty(extractor.dimension)
    crop_json = json.dumps(settings.as_dict(), sort_keys=True)
    start = time.perf_counter()
    for number, case in enumerate(cases):
        progress.report("reading", number / len(cases), case.case)
        image = read_volume(sample_data.resolve(case.image)[0])
        check_image(image)
        if not args.force:
            require_ct(assess_ct(intensity_stats(image)), f"image of case {case.case}")
        organs = read_volume(sample_data.resolve(case.organs)[0]) if case.organs else None
        items = []
        if case.seg:
            items += finding_items(case.case, image, read_volume(sample_data.resolve(case.seg)[0]), organs,
                                   case.lesion_type, args.min_volume)
        if case.findings:
            items += analysis_items(case.case, image, Path(case.findings))
        if organs is not None and organ_names != []:
            items += organ_items(case.case, image, organs, organ_names)

        def step(done: int, total: int, item_id: str, base: float = number) -> None:
            progress.report("features", (base + done / max(total, 1)) / len(cases), item_id)

        features = extractor.features(image, items, step)
        table = table.extend(FeatureTable(
            [i.id for i in items], [i.case for i in items], [i.kind for i in items], [i.name for i in items],
            [i.voxel_count for i in items], [extractor.model_name] * len(items),
            [extractor.model_sha256] * len(items), [crop_json] * len(items), features))
        log.info("%s: %d finding(s), %d organ(s)", case.case, sum(i.kind == "finding" for i in items),
                 sum(i.kind == "organ" for i in items))
    if not table.ids:
        raise PastaInputError("No finding and no organ to featurise in the given cases.",
                              "Check the label maps (empty?) and --organ-names.")
    progress.report("writing", 0.99, str(out))
    write_csv(table, out, overwrite=args.overwrite)
    per_crop = extractor.seconds_per_crop
    log.info("wrote %d rows x %d features to %s in %.1f s (encoder %.3f s per crop on %s)", len(table.ids),
             extractor.dimension, out, time.perf_counter() - start,
             sum(per_crop) / max(len(per_crop), 1), extractor.device)
    return 0


COMMANDS = [
    Command("features", "PASTA encoder features per finding and per organ (1 mm, SLF HU map, 96^3 lesion / 128^3 "
            "organ crops) into a CSV, for one case or a cohort (--manifest).", _add_arguments, run_features),
]
