"""Markdown and self-contained HTML: one key image per finding, in radiological orientation,
with the contour and RECIST lines drawn; reader text is escaped."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from PASTALib.report import key_images, review
from PASTALib.report.findings import analyse_segmentation
from PASTALib.lesions.lesion_types import BY_KEY
from PASTALib.report.render_html import render_html
from PASTALib.report.render_markdown import render_markdown
from PASTALib.io.volume import Volume

from conftest import GEOMETRIES


def scan(direction: np.ndarray):
    """A body with a hypodense lesion on the patient's right and a kidney stone on the left."""
    shape = (16, 64, 64)
    image = Volume(np.zeros(shape, np.int16), spacing=(2.0, 2.0, 3.0), direction=direction)
    k, j, i = np.indices(shape)
    ijk = np.stack([i, j, k], -1).reshape(-1, 3)
    lps = image.index_to_lps_points(ijk).reshape(*shape, 3) - image.index_to_lps_points([31.5, 31.5, 7.5])
    x, y, z = lps[..., 0], lps[..., 1], lps[..., 2]  # LPS: +x is the patient's left
    array = np.where(x ** 2 + y ** 2 < 55 ** 2, 50.0, -1000.0)
    labels = np.zeros(shape, np.int16)
    right = (x + 30) ** 2 + (y / 1.5) ** 2 + z ** 2 < 12 ** 2
    left = (x - 30) ** 2 + y ** 2 + z ** 2 < 6 ** 2
    array[right], labels[right] = 0.0, BY_KEY["liver_tumor"].id
    array[left], labels[left] = 600.0, BY_KEY["kidney_stone"].id
    image = image.with_array(array.astype(np.int16))
    return image, image.with_array(labels)


@pytest.mark.parametrize("name", ["axial_lps", "ras_flipped"])
def test_key_images_are_radiological_and_annotated(name, monkeypatch):
    image, labels = scan(GEOMETRIES[name]["direction"])
    analysis = analyse_segmentation(image, labels)
    report = analysis.report
    monkeypatch.setattr(key_images, "MIN_FIELD_MM", 400.0)  # show the whole slice
    for finding in report.findings:
        picture = np.asarray(key_images.render(image, analysis.mask(finding), finding))
        assert picture.shape == (key_images.OUTPUT_PX, key_images.OUTPUT_PX, 3)
        contour = np.argwhere((picture == key_images.CONTOUR).all(axis=-1))
        long_axis = np.argwhere((picture == key_images.LONG_AXIS).all(axis=-1))
        short_axis = np.argwhere((picture == key_images.SHORT_AXIS).all(axis=-1))
        assert len(contour) and len(long_axis) > 20 and len(short_axis) > 10
        centre_x = contour[:, 1].mean()
        assert abs(centre_x - key_images.OUTPUT_PX / 2) < 10  # the lesion is centred
        assert abs(long_axis[:, 1].mean() - centre_x) < 15  # the RECIST line lies on the lesion
        middle = picture[40:-40].astype(int)
        grey = (middle[..., 0] == middle[..., 1]) & (middle[..., 1] == middle[..., 2])
        body_x = np.argwhere(grey & (middle[..., 0] > 60) & (middle[..., 0] < 250))[:, 1].mean()
        on_patient_right = finding.lesion_type.key == "liver_tumor"
        # Radiological convention: the patient's right is on the image's left, so the rest of the
        # body lies to the right of a right-sided lesion.
        assert (body_x > centre_x + 20) == on_patient_right
        assert (body_x < centre_x - 20) == (not on_patient_right)


def test_html_is_self_contained_with_one_key_image_per_finding():
    image, labels = scan(np.eye(3))
    analysis = analyse_segmentation(image, labels)
    report = analysis.report
    review.set_review(report, "F2", "rejected", "Dr <b>X</b>")
    review.edit(report, "F1", "attributes.Surface.value", "Ill-defined margin", "Dr A",
                comment="<script>alert(1)</script>")
    images = key_images.key_images(report, image, analysis.mask)
    html = render_html(report, images)
    embedded = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(embedded) == len(report.findings) == 2
    for data in embedded:
        assert Image.open(io.BytesIO(base64.b64decode(data))).size == (320, 320)
    assert "<script>" not in html and "&lt;script&gt;" in html and "Dr &lt;b&gt;X&lt;/b&gt;" in html
    assert "http" not in html.replace("https://", "")  # nothing to fetch
    for finding in report.findings:
        assert f"id='{finding.id}'" in html and finding.lesion_type.name in html
    assert "Well-defined margin" in html  # the machine value, in the edit log
    assert "status-rejected" in html


def test_markdown_lists_findings_evidence_and_edits():
    image, labels = scan(np.eye(3))
    report = analyse_segmentation(image, labels).report
    review.edit(report, "F1", "staging.value", "T2", "Dr A")
    text = render_markdown(report, {"F1": "key_images/F1.png"})
    assert "![F1 key image](key_images/F1.png)" in text
    table = text.split("## Findings")[1].split("###")[0]
    rows = [line for line in table.splitlines() if line.startswith("| F")]
    assert len(rows) == 2 and "Liver tumor" in rows[0]
    assert "| Surface |" in text and "edge sharpness" in text and "AJCC 8th" in text
    assert "## Reader edits" in text and "| F1 | staging.value |" in text
    assert "Research use only" in text
