"""The report folder: findings.json, report.json, report.md with key images, report.html, and DICOM
SEG + SR; what ``pasta report``, ``pasta analyze`` and the Slicer module's export write."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from PASTALib.progress import ProgressReporter

log = logging.getLogger(__name__)

OUTPUTS = ("findings.json", "report.json", "report.md", "report.html")
KEY_IMAGE_DIR = "key_images"
DICOM_OUTPUTS = ("seg.dcm", "sr.dcm")
#: ``pasta analyze``: the model's label map and the findings' label map (label n on finding Fn's
#: voxels, on the input grid; exact, also for components split by organ).
SEGMENTATION = "segmentation.nii.gz"
FINDING_LABELS = "findings.nii.gz"
#: Every name a PASTA result folder may hold: a new result into the folder replaces all of them.
RESULT_NAMES = (*OUTPUTS, KEY_IMAGE_DIR, *DICOM_OUTPUTS, SEGMENTATION, FINDING_LABELS)


def summary_lines(report, out: Path) -> list[str]:
    """What a user reads on the terminal: one line per finding, the impression, where the files are."""
    lines = [f"{len(report.findings)} finding(s)"]
    for f in report.findings:
        recist = f.measurements.recist
        stage = f" {f.staging.value}" if f.staging.value else ""
        lines.append(f"  {f.id:<4}{f.lesion_type.name:<22}{(f.location.organ_name or '-'):<18}"
                     f"{recist.long_axis.length_mm:5.1f} x {recist.short_axis.length_mm:4.1f} mm "
                     f"{f.measurements.volume_ml:7.1f} ml{stage}  confidence {f.confidence.mean:.2f}")
    lines.append(f"Impression: {report.impression}")
    lines.append(f"Report: {out / 'report.html'} (also report.md, report.json, findings.json)")
    return lines


def write_report_outputs(analysis, image, out: Path, dicom: bool, progress: ProgressReporter) -> None:
    """findings.json, report.json, report.md + key images, report.html (+ DICOM SEG and SR) into
    ``out``, a run's fresh staging folder (:class:`PASTALib.result_folder.ResultFolder`). Each key
    image is a cancellation point."""
    from PASTALib.atomic import atomic_write

    from . import key_images
    from .render_html import render_html
    from .render_markdown import render_markdown

    report = analysis.report
    count = max(1, len(report.findings))
    images = key_images.key_images(report, image, analysis.mask, lambda number, finding: progress.report(
        "rendering", number / count, f"key image {finding.id}"))
    (out / KEY_IMAGE_DIR).mkdir()
    links = {}
    for finding_id, png in images.items():
        atomic_write(out / KEY_IMAGE_DIR / f"{finding_id}.png", png)
        links[finding_id] = f"{KEY_IMAGE_DIR}/{finding_id}.png"
    progress.report("writing", 0.0, "report")
    atomic_write(out / "findings.json", json.dumps(report.findings_document(), indent=2) + "\n")
    atomic_write(out / "report.json", report.to_json())
    atomic_write(out / "report.md", render_markdown(report, links))
    atomic_write(out / "report.html", render_html(report, images))
    if dicom:
        from .dicom_export import export_dicom

        progress.report("writing", 0.5, "DICOM SEG and SR")
        export_dicom(report, image, analysis.mask, out)
    progress.report("writing", 1.0, "done")
    log.info("%d finding(s)", len(report.findings))
