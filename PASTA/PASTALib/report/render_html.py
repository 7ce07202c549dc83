"""The report as one self-contained HTML file: styles inline, key images embedded as base64 PNG,
so it can be mailed, archived or opened offline without losing anything."""

from __future__ import annotations

import base64
from html import escape
from typing import Mapping, Optional

from . import text
from .model import Report

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1100px;color:#1d232a;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em}h2{border-bottom:1px solid #ccd;padding-bottom:.2em}
.disclaimer{background:#fff4e0;border-left:4px solid #e8a33d;padding:.5em .8em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #d5d9e0;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f1f3f6}
.finding{display:flex;gap:1.2em;flex-wrap:wrap;border:1px solid #d5d9e0;border-radius:6px;
padding:1em;margin:1em 0}.finding img{width:320px;height:320px;image-rendering:auto}
.facts{flex:1;min-width:420px}.status-pending{color:#8a6d00}.status-accepted{color:#1d7a32}
.status-rejected{color:#b02a2a;text-decoration:line-through}.rule{color:#555;font-size:.85em}
pre{white-space:pre-wrap;background:#f7f8fa;padding:.6em;border-radius:4px}
"""


def _table(rows, header=None) -> str:
    head = "" if header is None else "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def render_html(report: Report, images: Optional[Mapping[str, bytes]] = None) -> str:
    """HTML text; ``images`` maps finding ids to PNG bytes (one key image per finding)."""
    images = images or {}
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>PASTA report {escape(report.report_id)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{escape(text.title(report))}</h1>",
             f"<p class='disclaimer'>{escape(report.disclaimer)}</p>",
             _table([(escape(k), escape(str(v))) for k, v in text.study_lines(report)]),
             "<h2>Impression</h2>", f"<pre>{escape(report.impression)}</pre>", "<h2>Findings</h2>"]
    if not report.findings:
        parts.append("<p>No findings.</p>")
    else:
        rows = []
        for f in report.findings:
            m = f.measurements
            rows.append((f"<a href='#{escape(f.id)}'>{escape(f.id)}</a>", escape(f.lesion_type.name),
                         escape(text.where(f)), text.size(f), f"{m.max_3d_diameter.length_mm:.1f}",
                         f"{m.volume_ml:.2f}", f"{m.hu.mean:.0f}", escape(text.t_category(f)),
                         f"<span class='status-{f.review.status}'>{f.review.status}</span>"))
        parts.append(_table(rows, ["ID", "Type", "Location", "Long x short (mm)", "3D max (mm)",
                                   "Volume (mL)", "Mean HU", "T", "Review"]))
    for f in report.findings:
        parts.append(_finding(report, f, images.get(f.id)))
    if report.edits:
        parts.append("<h2>Reader edits</h2>")
        parts.append(_table([(escape(e.target), escape(e.field), escape(str(e.original)),
                              escape(str(e.new)), escape(e.editor), escape(e.time),
                              escape(e.comment or "")) for e in report.edits],
                            ["Target", "Field", "Machine value", "New value", "By", "When", "Comment"]))
    d = report.dropped
    if d.count:
        parts.append(f"<p>{d.count} component(s) below {d.min_volume_ml:g} mL "
                     f"({d.total_volume_ml:.3f} mL in all) were not reported.</p>")
    parts += [f"<p class='rule'>{escape(note)}</p>" for note in report.provenance.notes]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _finding(report: Report, f, png: Optional[bytes]) -> str:
    m = f.measurements
    image = ("<img alt='key image of {0}' src='data:image/png;base64,{1}'>".format(
        escape(f.id), base64.b64encode(png).decode("ascii")) if png else "<p>(no key image)</p>")
    conf = (f"mean {f.confidence.mean:.2f}, max {f.confidence.max:.2f} ({escape(f.confidence.source)})"
            if f.confidence else "n/a (no probabilities)")
    r = m.recist
    facts = [
        ("Review", f"<span class='status-{f.review.status}'>{f.review.status}</span>"
         + (f" by {escape(f.review.reviewer)} ({escape(f.review.time or '')})" if f.review.reviewer else "")),
        ("Location", f"{escape(text.where(f))} <span class='rule'>(from {escape(f.location.source)})</span>"),
        ("Confidence", conf),
        ("Volume", f"{m.volume_ml:.2f} mL"),
        ("RECIST", f"long {r.long_axis.length_mm:.1f} mm, short {r.short_axis.length_mm:.1f} mm "
                   f"<span class='rule'>(slice {r.slice_axis}={r.slice_index}; long axis RAS "
                   f"{_pt(r.long_axis.start_ras)} to {_pt(r.long_axis.end_ras)})</span>"),
        ("Largest 3D diameter", f"{m.max_3d_diameter.length_mm:.1f} mm"),
        ("HU", f"mean {m.hu.mean:.0f}, SD {m.hu.std:.0f}, p5-p95 {m.hu.percentiles['p5']:.0f} to "
               f"{m.hu.percentiles['p95']:.0f}"),
    ]
    attrs = [(escape(name), escape(text.attribute_value(a)),
              f"{escape(text.evidence(a))}<br><span class='rule'>{escape(a.rule.rule)}</span>")
             for name, a in f.attributes.items()]
    s = f.staging
    staging = (f"<p><b>T category: {escape(text.t_category(f))}</b> ({escape(s.system)})<br>"
               f"<span class='rule'>{escape(s.rule)}</span></p>"
               + "".join(f"<p class='rule'>{escape(n)}</p>" for n in s.notes + f.notes))
    if f.heads:
        staging += _table([(escape(h.task), escape(text.head_prediction(h))
                            + "".join(f"<br><span class='rule'>{escape(n)}</span>" for n in h.notes))
                           for h in f.heads], ["Learned head", "Prediction (provenance)"])
    return (f"<section class='finding' id='{escape(f.id)}'><div>{image}</div><div class='facts'>"
            f"<h3>{escape(f.id)}: {escape(f.lesion_type.name)}</h3>"
            + _table([(k, v) for k, v in facts]) + _table(attrs, ["Attribute", "Value", "Evidence"])
            + staging + "</div></section>")


def _pt(p) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in p) + ")"
