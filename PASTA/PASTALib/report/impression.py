"""The impression: a short summary a reader can edit, built from the findings."""

from __future__ import annotations

from . import text
from .model import Dropped, Finding


def describe(finding: Finding) -> str:
    """One line per finding: type, where, size, T category."""
    where = text.where(finding)
    m = finding.measurements
    size = (f"{m.recist.long_axis.length_mm:.0f} x {m.recist.short_axis.length_mm:.0f} mm "
            f"(largest 3D diameter {m.max_3d_diameter.length_mm:.0f} mm, {m.volume_ml:.1f} mL)")
    staging = finding.staging
    if staging.value and staging.source == "model":
        t = (f"; {staging.value} from a learned staging head (size-based rule: {staging.rule_value or 'n/a'}; "
             f"{staging.system}, reader to confirm)")
    elif staging.value:
        t = f"; size-based {staging.value} ({staging.system}" + (", reader to confirm)" if staging.requires_reader else ")")
    elif staging.status == "not_applicable_from_size":
        t = "; T by depth of wall invasion (reader)"
    else:
        t = ""
    return f"{finding.id}: {finding.lesion_type.name}, {where}, {size}{t}."


def build_impression(findings: list[Finding], dropped: Dropped) -> str:
    kept = [f for f in findings if f.review.status != "rejected"]
    if not kept:
        text = "No lesion found in the lesion segmentation."
    else:
        malignant = sum(f.lesion_type.malignant for f in kept)
        head = (f"{len(kept)} finding{'s' if len(kept) != 1 else ''} "
                f"({malignant} suspected malignant, {len(kept) - malignant} benign).")
        order = sorted(kept, key=lambda f: (not f.lesion_type.malignant, -f.measurements.volume_ml))
        text = "\n".join([head, *[describe(f) for f in order]])
    if dropped.count:
        text += (f"\n{dropped.count} component{'s' if dropped.count != 1 else ''} below "
                 f"{dropped.min_volume_ml:g} mL not reported.")
    return text
