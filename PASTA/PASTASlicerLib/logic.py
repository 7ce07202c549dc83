"""Slicer-side logic shared by the PASTA and PASTASynth modules (MRML in, core results out)."""

from __future__ import annotations

from typing import Any

from PASTALib.io.info import build_report, render_text
from PASTALib.io.input_checks import assess_ct, check_image, check_mask_matches, intensity_stats, require_ct

from .volume_nodes import node_to_volume, segmentation_to_volume


def describe_volume_node(volume_node, mask_node=None, force: bool = False,
                         force_hint: str | None = None) -> dict[str, Any]:
    """The ``pasta info`` report for a volume node, with an optional label map or segmentation.

    Raises :class:`PASTALib.errors.PastaInputError` for unusable input, exactly as the CLI does;
    ``force_hint`` tells the user how to override the CT check in their interface.
    """
    volume = node_to_volume(volume_node)
    check_image(volume, name=f"volume '{volume_node.GetName()}'")
    stats = intensity_stats(volume)
    assessment = assess_ct(stats)
    if not force:
        require_ct(assessment, name=f"volume '{volume_node.GetName()}'", hint=force_hint)
    mask = names = None
    if mask_node is not None:
        if mask_node.IsA("vtkMRMLSegmentationNode"):
            mask, names = segmentation_to_volume(mask_node, volume_node)
        else:
            mask = node_to_volume(mask_node)
        check_mask_matches(volume, mask, mask_name=f"mask '{mask_node.GetName()}'")
    return build_report(volume, stats, assessment, mask, names)


def report_text(report: dict[str, Any]) -> str:
    """Plain-text rendering of :func:`describe_volume_node`'s report."""
    return render_text(report)


def check_verdict(report: dict[str, Any] | None, problem: str = "") -> str:
    """One line under the Check volume button: the CT verdict and the grid, or the problem found."""
    if report is None:
        return f"Not usable as it is: {problem}"
    check, geometry = report["ct_check"], report["geometry"]
    size = " x ".join(str(v) for v in geometry["size"])
    spacing = " x ".join(f"{v:.2f}" for v in geometry["spacing_mm"])
    verdict = "Looks like CT in HU" if check["looks_like_ct"] else f"Does not look like CT ({check['verdict']})"
    return f"{verdict}: {size} voxels of {spacing} mm, {geometry['orientation']}. Details under Volume check."
