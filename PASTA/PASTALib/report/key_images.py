"""Key images: the axial slice through a finding, windowed for its organ, with its contour and
RECIST axes drawn, as a reader would annotate it.

The slice is the one the RECIST long axis was measured on (see :mod:`.measurements` for "axial").
Images are shown in radiological convention: the patient's right on the left of the image,
anterior at the top; pixels are resampled to square millimetres so lengths look right.
"""

from __future__ import annotations

import io
from typing import Callable, Optional

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from PASTALib.io.volume import Volume
from PASTALib.lesions import anatomy

from .measurements import slice_axis
from .model import Finding

OUTPUT_PX = 320
MIN_FIELD_MM = 80.0
MARGIN_MM = 20.0
CONTOUR = (255, 210, 0)
LONG_AXIS = (255, 70, 70)
SHORT_AXIS = (60, 200, 255)


def _screen_axes(volume: Volume, axis: int) -> tuple[int, int, bool, bool]:
    """(horizontal index axis, vertical index axis, flip horizontal, flip vertical)."""
    in_plane = [a for a in range(3) if a != axis]
    d = volume.direction
    horizontal = max(in_plane, key=lambda a: abs(d[0, a]))
    vertical = in_plane[0] if in_plane[1] == horizontal else in_plane[1]
    flip_h = d[0, horizontal] < 0  # screen right = patient left (+x in LPS)
    dominant = int(np.argmax(np.abs(d[:, vertical])))
    # screen down = posterior (+y in LPS), or inferior (-z) when the plane is not axial
    flip_v = d[1, vertical] < 0 if dominant != 2 else d[2, vertical] > 0
    return horizontal, vertical, flip_h, flip_v


def render(image: Volume, mask: np.ndarray, finding: Finding, size_px: int = OUTPUT_PX) -> Image.Image:
    """The key image of one finding (RGB). ``mask`` is the finding's voxels on the image grid."""
    axis = slice_axis(image)
    recist = finding.measurements.recist
    index = recist.slice_index
    horizontal, vertical, flip_h, flip_v = _screen_axes(image, axis)
    take = [slice(None)] * 3
    take[2 - axis] = index
    plane = np.asarray(image.array[tuple(take)], dtype=np.float32)
    plane_mask = np.asarray(mask[tuple(take)], dtype=bool)
    # The 2D arrays are indexed by the remaining index axes in array order; make them
    # [vertical, horizontal].
    remaining = [a for a in (2, 1, 0) if a != axis]
    if remaining.index(vertical) != 0:
        plane, plane_mask = plane.T, plane_mask.T
    sx, sy = image.spacing[horizontal], image.spacing[vertical]

    rows, cols = np.nonzero(plane_mask) if plane_mask.any() else (np.array([plane.shape[0] // 2]),
                                                                  np.array([plane.shape[1] // 2]))
    centre = np.array([(rows.min() + rows.max()) / 2.0, (cols.min() + cols.max()) / 2.0])
    extent = max((rows.max() - rows.min() + 1) * sy, (cols.max() - cols.min() + 1) * sx)
    half_mm = max(MIN_FIELD_MM, extent + 2 * MARGIN_MM) / 2.0
    half = np.array([half_mm / sy, half_mm / sx])
    top_left = centre - half
    # Output pixel (y, x) samples plane position top_left + (y, x) * step (nearest for the mask).
    step = 2 * half / size_px
    ys = top_left[0] + (np.arange(size_px) + 0.5) * step[0]
    xs = top_left[1] + (np.arange(size_px) + 0.5) * step[1]
    if flip_v:
        ys = ys[::-1]
    if flip_h:
        xs = xs[::-1]
    grid = np.meshgrid(ys, xs, indexing="ij")
    width, level = anatomy.window_for(finding.location.organ)
    values = ndimage.map_coordinates(plane, grid, order=1, mode="constant", cval=float(plane.min()))
    grey = np.clip((values - (level - width / 2.0)) / width, 0.0, 1.0) * 255.0
    rgb = np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2)
    inside = ndimage.map_coordinates(plane_mask.astype(np.float32), grid, order=0, mode="constant") > 0.5
    edge = ndimage.binary_dilation(inside, iterations=2) & ~inside  # outside: keeps the lesion visible
    rgb[edge] = CONTOUR
    picture = Image.fromarray(rgb, "RGB")
    draw = ImageDraw.Draw(picture)

    def to_screen(ras):
        ijk = image.ras_to_index_points(np.asarray(ras, dtype=np.float64))
        y = (ijk[vertical] - top_left[0]) / step[0]
        x = (ijk[horizontal] - top_left[1]) / step[1]
        return (size_px - x if flip_h else x, size_px - y if flip_v else y)

    for line, colour in ((recist.long_axis, LONG_AXIS), (recist.short_axis, SHORT_AXIS)):
        a, b = to_screen(line.start_ras), to_screen(line.end_ras)
        draw.line([a, b], fill=colour, width=2)
        for x, y in (a, b):
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=colour, width=2)
    font = ImageFont.load_default()
    title = f"{finding.id} {finding.lesion_type.name}"
    sizes = (f"long {recist.long_axis.length_mm:.1f} mm  short {recist.short_axis.length_mm:.1f} mm")
    footer = f"slice {recist.slice_axis}={index}  W {width:g} L {level:g}"
    for position, text, colour in (((6, 4), title, (255, 255, 255)), ((6, 18), sizes, LONG_AXIS),
                                   ((6, size_px - 16), footer, (200, 200, 200))):
        draw.text((position[0] + 1, position[1] + 1), text, fill=(0, 0, 0), font=font)
        draw.text(position, text, fill=colour, font=font)
    draw.text((4, size_px // 2 - 6), "R", fill=(255, 255, 0), font=font)
    draw.text((size_px - 12, size_px // 2 - 6), "L", fill=(255, 255, 0), font=font)
    return picture


def png_bytes(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def key_images(report, image: Volume, mask_of: Callable[[Finding], np.ndarray],
               before_each: Optional[Callable[[int, Finding], None]] = None) -> dict[str, bytes]:
    """PNG bytes per finding id, for the HTML (embedded) and Markdown (files) reports.

    ``mask_of`` gives a finding's voxels: :meth:`.findings.Analysis.mask` right after the
    analysis, or ``lambda f: finding_mask(labels, f)`` for a report read back from JSON.
    ``before_each(n, finding)`` runs before each image (a progress report: a cancellation point).
    """
    images = {}
    for number, finding in enumerate(report.findings):
        if before_each is not None:
            before_each(number, finding)
        images[finding.id] = png_bytes(render(image, mask_of(finding), finding))
    return images
