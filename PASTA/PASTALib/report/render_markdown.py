"""The report as Markdown: readable in any viewer, diff-able in a repository."""

from __future__ import annotations

from typing import Mapping, Optional

from . import text
from .model import Report


def _cell(value: str) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report, images: Optional[Mapping[str, str]] = None) -> str:
    """Markdown text; ``images`` maps finding ids to key-image paths relative to the file."""
    images = images or {}
    out = [f"# {text.title(report)}", "", f"> {report.disclaimer}", ""]
    out += ["| | |", "|---|---|"] + [f"| {k} | {_cell(v)} |" for k, v in text.study_lines(report)]
    out += ["", "## Impression", ""] + [line for line in report.impression.splitlines()] + [""]
    out += ["## Findings", ""]
    if not report.findings:
        out += ["No findings.", ""]
    else:
        out += ["| ID | Type | Location | Long x short (mm) | 3D max (mm) | Volume (mL) | Mean HU | T | Review |",
                "|---|---|---|---|---|---|---|---|---|"]
        for f in report.findings:
            m = f.measurements
            out.append(f"| {f.id} | {f.lesion_type.name} | {_cell(text.where(f))} | {text.size(f)} | "
                       f"{m.max_3d_diameter.length_mm:.1f} | {m.volume_ml:.2f} | {m.hu.mean:.0f} | "
                       f"{_cell(text.t_category(f))} | {f.review.status} |")
        out.append("")
    for f in report.findings:
        m = f.measurements
        out += [f"### {f.id}: {f.lesion_type.name}, {text.where(f)}", ""]
        if f.id in images:
            out += [f"![{f.id} key image]({images[f.id]})", ""]
        conf = (f"mean {f.confidence.mean:.2f}, max {f.confidence.max:.2f}"
                if f.confidence else "n/a (no probabilities)")
        out += [f"- Review: **{f.review.status}**" + (f" by {f.review.reviewer} ({f.review.time})"
                                                      if f.review.reviewer else ""),
                f"- Confidence: {conf}",
                f"- Volume {m.volume_ml:.2f} mL; RECIST long axis {m.recist.long_axis.length_mm:.1f} mm, "
                f"short axis {m.recist.short_axis.length_mm:.1f} mm (slice {m.recist.slice_axis}="
                f"{m.recist.slice_index}); largest 3D diameter {m.max_3d_diameter.length_mm:.1f} mm",
                f"- HU mean {m.hu.mean:.0f} +- {m.hu.std:.0f} (p5 {m.hu.percentiles['p5']:.0f}, "
                f"median {m.hu.percentiles['p50']:.0f}, p95 {m.hu.percentiles['p95']:.0f})",
                f"- Location from {f.location.source}", ""]
        out += ["| Attribute | Value | Measurement | Rule |", "|---|---|---|---|"]
        for name, attribute in f.attributes.items():
            out.append(f"| {name} | {_cell(text.attribute_value(attribute))} | "
                       f"{_cell(text.evidence(attribute))} | {_cell(attribute.rule.rule)} |")
        s = f.staging
        out += ["", f"- T category: **{text.t_category(f)}** ({s.system}). {s.rule}"]
        if s.alternatives:
            out.append(f"- Alternatives: {', '.join(s.alternatives)}")
        out += [f"- {note}" for note in s.notes + f.notes]
        if f.heads:
            out += ["", "| Learned head | Prediction (provenance) |", "|---|---|"]
            out += [f"| {h.task} | {_cell(text.head_prediction(h))} |" for h in f.heads]
            notes = [f"- {note}" for h in f.heads for note in h.notes]
            out += [""] + notes if notes else []
        out.append("")
    if report.edits:
        out += ["## Reader edits", "", "| Target | Field | Machine value | New value | By | When |",
                "|---|---|---|---|---|---|"]
        for e in report.edits:
            out.append(f"| {e.target} | {e.field} | {_cell(e.original)} | {_cell(e.new)} | "
                       f"{_cell(e.editor)} | {e.time} |")
        out.append("")
    d = report.dropped
    if d.count:
        out += [f"{d.count} component(s) below {d.min_volume_ml:g} mL ({d.total_volume_ml:.3f} mL in "
                "all) were not reported.", ""]
    out += [f"- {note}" for note in report.provenance.notes]
    return "\n".join(out).rstrip() + "\n"
