"""``pasta analyze FOLDER``: every scan in a folder, with the model loaded once (as nnU-Net's predictor
takes a folder).

A folder that holds volume files (NIfTI, NRRD, MetaImage) is a batch: each volume file, and each
sub-folder holding a DICOM series, is one case, written to ``OUTDIR/<case>/`` (each case folder whole or
absent, as a single analysis). Files named like masks (``total``, ``organ``, ``seg``, ``mask``) are not
cases. A folder of ``.dcm`` files alone stays one DICOM series. ``--organs`` may then be a folder with
one organ mask per case, named like the case. A case that fails is reported and the others go on; a
rerun skips the cases already complete (``--overwrite`` redoes them). ``batch.json`` and ``batch.csv``
summarise the run.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from PASTALib.atomic import atomic_write
from PASTALib.errors import PastaInputError
from PASTALib.io.volume_io import VOLUME_SUFFIXES, images_and_masks, suffix_of
from PASTALib.progress import ProgressReporter

from .options import AnalysisOptions

log = logging.getLogger(__name__)

SUMMARY = "batch.json"


@dataclass
class CaseOutcome:
    case: str
    image: str
    findings: Optional[int] = None
    error: Optional[str] = None
    status: str = "analysed"  #: "analysed", "already done" (a rerun skips it) or "failed"


SUMMARY_CSV = "batch.csv"


def case_name(path: Path) -> str:
    return path.name[: -len(suffix_of(path))] if path.is_file() else path.name


def batch_cases(image: str) -> Optional[list[Path]]:
    """The cases of a batch folder, or None when ``image`` is not one (a file, a sample, a DICOM folder)."""
    folder = Path(image).expanduser()
    if not folder.is_dir():
        return None
    entries = list(folder.iterdir())
    volumes = [p for p in entries if p.name.lower().endswith(VOLUME_SUFFIXES)]
    subfolders = [p for p in entries if p.is_dir() and any(p.glob("*.dcm"))]
    if not volumes and not subfolders:
        return None  # one DICOM series (read as such), or nothing PASTA can read (read_volume says so)
    if any(p.is_file() and p.suffix.lower() == ".dcm" for p in entries):
        raise PastaInputError(f"{folder} mixes DICOM files with other scans.",
                              "Put each DICOM series in a sub-folder of its own, next to the volume files.")
    images, _ = images_and_masks(folder)
    if not images:
        raise PastaInputError(f"{folder} holds only files named like masks ({', '.join(p.name for p in volumes)}).",
                              "Name the scans without 'total', 'organ', 'seg' or 'mask', or pass one file.")
    return images


def organs_for(organs: Optional[str], case: str) -> Optional[str]:
    """The case's organ mask when ``--organs`` is a folder (a file named like the case), else ``organs``."""
    if organs is None or not Path(organs).is_dir():
        return organs
    matches = [p for p in sorted(Path(organs).iterdir()) if p.is_file() and case_name(p) == case]
    return str(matches[0]) if matches else None


def run_batch(options: AnalysisOptions, cases: list[Path], progress: ProgressReporter) -> list[CaseOutcome]:
    """Analyse every case into ``OUTDIR/<case>/``; one model load; failures recorded, not fatal."""
    from .pipeline import run_analysis

    out = Path(options.output).expanduser()
    if out.exists() and not out.is_dir():
        raise PastaInputError(f"{out} is a file; a batch writes one folder per case into a folder.",
                              "Pass a folder name with -o.")
    names = [case_name(path) for path in cases]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PastaInputError(f"Several scans in {options.image} would be case {duplicates[0]!r}.",
                              "Give every scan in the folder its own name.")
    out.mkdir(parents=True, exist_ok=True)
    loaded: dict = {}
    outcomes = []
    for number, (path, name) in enumerate(zip(cases, names), start=1):
        log.info("case %d of %d: %s", number, len(cases), name)
        done = _finished_findings(out / name)
        if done is not None and not options.overwrite:  # a rerun resumes: complete cases are kept
            outcomes.append(CaseOutcome(name, str(path), findings=done, status="already done"))
            continue
        case = dataclasses.replace(options, image=str(path), output=str(out / name),
                                   organs=organs_for(options.organs, name))
        try:
            analysis = run_analysis(case, progress, loaded)
        except PastaInputError as exc:
            log.error("case %s: %s", name, exc)
            outcomes.append(CaseOutcome(name, str(path), error=str(exc), status="failed"))
            continue
        outcomes.append(CaseOutcome(name, str(path), findings=len(analysis.report.findings)))
    summary = {"image_folder": str(options.image), "model": options.model,
               "cases": [dataclasses.asdict(o) for o in outcomes]}
    atomic_write(out / SUMMARY, json.dumps(summary, indent=1) + "\n", overwrite=True)
    atomic_write(out / SUMMARY_CSV, _csv(outcomes), overwrite=True)
    return outcomes


def _finished_findings(case_dir: Path) -> Optional[int]:
    """The number of findings of a complete earlier result in ``case_dir`` (its manifest and report), else None."""
    from PASTALib.result_folder import MANIFEST

    try:
        if (case_dir / MANIFEST).is_file():
            return len(json.loads((case_dir / "report.json").read_text(encoding="utf-8"))["findings"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None


def _csv(outcomes: list[CaseOutcome]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["case", "image", "status", "findings", "error"])
    for o in outcomes:
        writer.writerow([o.case, o.image, o.status, "" if o.findings is None else o.findings, o.error or ""])
    return buffer.getvalue()
