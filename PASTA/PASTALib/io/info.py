"""``pasta info``: what a volume is, where it sits in the patient, and whether it looks like CT."""

from __future__ import annotations

from typing import Any

import numpy as np

from .input_checks import CTAssessment, VolumeIntensityStats
from .orientation import axis_codes, obliquity_degrees
from .volume import Volume


def geometry_report(volume: Volume) -> dict[str, Any]:
    """Grid facts in both world conventions, rounded only for display, never for computation."""
    corners = np.array([[0, 0, 0], np.subtract(volume.size, 1)], dtype=np.float64)
    corner_ras = volume.index_to_ras_points(corners)
    return {
        "size": list(volume.size),
        "voxels": int(volume.array.size),
        "dtype": str(volume.array.dtype),
        "memory_mb": round(volume.array.nbytes / 2**20, 2),
        "spacing_mm": list(volume.spacing),
        "extent_mm": list(volume.extent_mm),
        "origin_lps": list(volume.origin),
        "origin_ras": [-volume.origin[0], -volume.origin[1], volume.origin[2]],
        "direction_lps": volume.direction.tolist(),
        "ijk_to_ras": volume.index_to_ras.tolist(),
        "orientation": axis_codes(volume.direction),
        "oblique_degrees": round(obliquity_degrees(volume.direction), 4),
        "first_voxel_ras": corner_ras[0].tolist(),
        "last_voxel_ras": corner_ras[1].tolist(),
    }


def mask_report(mask: Volume, label_names: dict[int, str] | None = None) -> dict[str, Any]:
    """Labels present in a mask with voxel counts and volumes."""
    values, counts = np.unique(mask.array, return_counts=True)
    voxel_ml = float(np.prod(mask.spacing)) / 1000.0
    labels = []
    for value, count in zip(values.tolist(), counts.tolist()):
        if value == 0:
            continue
        entry: dict[str, Any] = {"id": int(value), "voxels": int(count),
                                 "volume_ml": round(count * voxel_ml, 2)}
        if label_names and int(value) in label_names:
            entry["name"] = label_names[int(value)]
        labels.append(entry)
    return {"source": mask.metadata.get("source", ""), "geometry": "matches the image",
            "label_count": len(labels), "labels": labels}


def build_report(
    volume: Volume,
    stats: VolumeIntensityStats,
    assessment: CTAssessment,
    mask: Volume | None = None,
    label_names: dict[int, str] | None = None,
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "source": volume.metadata.get("source", ""),
        "geometry": geometry_report(volume),
        "intensity": stats.as_dict(),
        "ct_check": {
            "looks_like_ct": assessment.looks_like_ct,
            "verdict": assessment.verdict,
            "problems": assessment.problems,
            "notes": assessment.notes,
        },
        "metadata": {k: v for k, v in volume.metadata.items() if k != "source"},
    }
    if mask is not None:
        report["mask"] = mask_report(mask, label_names)
    return report


def render_text(report: dict[str, Any]) -> str:
    """The human-readable form printed by ``pasta info``."""
    g = report["geometry"]
    s = report["intensity"]
    c = report["ct_check"]

    def triple(values, digits=4):
        return " x ".join(f"{v:.{digits}g}" for v in values)

    def point(values):
        return "(" + ", ".join(f"{v:.3f}" for v in values) + ")"

    oblique = f"oblique by {g['oblique_degrees']:.2f} deg" if g["oblique_degrees"] > 0.01 else "not oblique"
    lines = [
        f"Image        {report['source']}",
        f"Size         {triple(g['size'])} voxels ({g['voxels']:,}; {g['dtype']}, {g['memory_mb']:.1f} MB)",
        f"Spacing      {triple(g['spacing_mm'])} mm",
        f"Extent       {triple(g['extent_mm'])} mm",
        f"Orientation  {g['orientation']} (i, j, k point toward these patient directions), {oblique}",
        f"Origin       RAS {point(g['origin_ras'])}  LPS {point(g['origin_lps'])} mm",
        f"Voxel range  RAS {point(g['first_voxel_ras'])} to {point(g['last_voxel_ras'])} mm",
        "Axes (LPS)   " + "  ".join(f"{axis} {point(column)}" for axis, column
                                    in zip("ijk", zip(*g["direction_lps"]))),
        f"Intensity    min {s['min']:g}  max {s['max']:g}  mean {s['mean']:.1f}  std {s['std']:.1f}",
        "Percentiles  " + "  ".join(f"{k} {v:g}" for k, v in s["percentiles"].items()),
        f"Content      air {100 * s['air_fraction']:.1f} %  bone {100 * s['bone_fraction']:.1f} %"
        + (f"  tissue median {s['body_median']:.0f}" if s["body_median"] is not None else ""),
        f"CT check     {c['verdict']}",
    ]
    lines += [f"  problem:   {p}" for p in c["problems"]]
    lines += [f"  note:      {n}" for n in c["notes"]]
    for key, value in report["metadata"].items():
        lines.append(f"{key:<13}{value}")
    mask = report.get("mask")
    if mask:
        lines.append(f"Mask         {mask['source']} ({mask['geometry']}; {mask['label_count']} labels)")
        for label in mask["labels"]:
            name = label.get("name", "")
            lines.append(f"  {label['id']:>4} {name:<32} {label['volume_ml']:>9.1f} mL")
    return "\n".join(lines)
