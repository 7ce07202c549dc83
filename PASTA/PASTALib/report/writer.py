"""The report folder: findings.json, report.json, report.md with key images, report.html, and DICOM
SEG + SR; what ``pasta report``, ``pasta analyze`` and the Slicer module's export write."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from PASTALib.errors import PastaInputError
from PASTALib.progress import ProgressReporter

log = logging.getLogger(__name__)

OUTPUTS = ("findings.json", "report.json", "report.md", "report.html")
KEY_IMAGE_DIR = "key_images"


def check_outputs_free(out: Path, dicom: bool, overwrite: bool, extra: tuple[str, ...] = ()) -> None:
    """Refuse before any work if an output would overwrite a file the user did not offer up."""
    planned = [out / name for name in (*OUTPUTS, *extra)] + ([out / "seg.dcm", out / "sr.dcm"] if dicom else [])
    existing = [p.name for p in planned if p.exists()]
    if existing and not overwrite:
        raise PastaInputError(f"{out} already holds {', '.join(existing)}; PASTA never overwrites a "
                              "file unless asked.", "Choose another output folder or pass --overwrite.")


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


def write_report_outputs(analysis, image, out: Path, dicom: bool, overwrite: bool,
                         progress: ProgressReporter) -> None:
    """findings.json, report.json, report.md + key images, report.html (+ DICOM SEG and SR)."""
    from PASTALib.atomic import atomic_write as _write_text

    from . import key_images
    from .render_html import render_html
    from .render_markdown import render_markdown

    report = analysis.report
    progress.report("rendering", 0.9, "key images")
    images = key_images.key_images(report, image, analysis.mask)
    out.mkdir(parents=True, exist_ok=True)
    (out / KEY_IMAGE_DIR).mkdir(exist_ok=True)
    links = {}
    for finding_id, png in images.items():
        _write_text(out / KEY_IMAGE_DIR / f"{finding_id}.png", png, overwrite=True)
        links[finding_id] = f"{KEY_IMAGE_DIR}/{finding_id}.png"
    _write_text(out / "findings.json", json.dumps(report.findings_document(), indent=2) + "\n", overwrite)
    _write_text(out / "report.json", report.to_json(), overwrite)
    _write_text(out / "report.md", render_markdown(report, links), overwrite)
    _write_text(out / "report.html", render_html(report, images), overwrite)
    if dicom:
        from .dicom_export import export_dicom

        progress.report("dicom", 0.95, "SEG and SR")
        export_dicom(report, image, analysis.mask, out, overwrite=overwrite)
    log.info("%d finding(s); wrote %s", len(report.findings), out)
