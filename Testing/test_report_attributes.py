"""PASTA's five attributes: each rule fires at its stated threshold, and each measurement moves
across the threshold when the image changes the way a reader would see it change."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from PASTALib.report import attributes as A
from PASTALib.lesions.anatomy import totalsegmentator_v2_sites
from PASTALib.lesions.lesion_types import BY_KEY
from PASTALib.report.model import ATTRIBUTE_OPTIONS, ModelPrediction

LIVER, STOMACH = 5, 6
GROUPS = {label: site.group for label, site in totalsegmentator_v2_sites().items()}
SHAPE = (48, 48, 48)


def ball(radius, centre=(24, 24, 24), shape=SHAPE, spacing=(1.0, 1.0, 1.0)):
    k, j, i = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return (((k - centre[0]) * spacing[0]) ** 2 + ((j - centre[1]) * spacing[1]) ** 2
            + ((i - centre[2]) * spacing[2]) ** 2) <= radius ** 2


def scene(lesion_hu=10.0, organ_hu=60.0, noise=5.0, blur_mm=0.0, lesion=None, organs=None,
          lesion_type="liver_tumor", seed=0):
    lesion = ball(8) if lesion is None else lesion
    if organs is None:
        organs = np.zeros(SHAPE, np.int32)
        organs[4:44, 4:44, 4:44] = LIVER
    image = np.where(organs > 0, organ_hu, -100.0)
    image[lesion] = lesion_hu
    if blur_mm:
        image = ndimage.gaussian_filter(image, blur_mm)
    image = image + np.random.default_rng(seed).normal(0, noise, SHAPE)
    diameter = 2 * max(np.ptp(np.argwhere(lesion), axis=0) + 1) / 2
    return A.make_context(image, lesion, lesion, organs, GROUPS, "liver", BY_KEY[lesion_type],
                          (1.0, 1.0, 1.0), float(diameter))


# ------------------------------------------------------------------------ thresholds, exactly
def test_density_threshold():
    band = A.DENSITY_ISO_BAND_HU
    assert A.classify_density(-band - 0.01) == "Hypodense"
    assert A.classify_density(-band) == A.classify_density(band) == A.classify_density(0) == "Isodense"
    assert A.classify_density(band + 0.01) == "Hyperdense"


def test_heterogeneity_threshold():
    t = A.HETEROGENEITY_STD_HU
    assert A.classify_heterogeneity(t - 0.01) == "Homogeneous"
    assert A.classify_heterogeneity(t) == "Heterogeneous"


def test_surface_thresholds():
    c, s = A.SURFACE_MIN_CONTRAST_HU, A.SURFACE_SHARPNESS_MIN
    assert A.classify_surface(c, s) == A.classify_surface(-c, 1.0) == "Well-defined margin"
    assert A.classify_surface(c - 0.01, 1.0) == "Ill-defined margin"
    assert A.classify_surface(100.0, s - 0.01) == "Ill-defined margin"


def test_shape_thresholds_in_order():
    d, w, r = A.PUNCTATE_MAX_DIAMETER_MM, A.WALL_THICKNESS_RATIO_MAX, A.SPHERICITY_ROUND_MIN
    assert A.classify_shape(d - 0.01, 0.5, 0.1) == "Punctate, nodular"  # size decides first
    assert A.classify_shape(d, 0.99, w - 0.01) == "Wall thickening"
    assert A.classify_shape(d, r, w) == "Round-like"
    assert A.classify_shape(d, r - 0.01, None) == "Irregular"


def test_invasion_threshold():
    t = A.INVASION_CONTACT_FRACTION
    assert A.classify_invasion(t) == "Close relationship with adjacent structures"
    assert A.classify_invasion(t - 1e-6) == "No close relationship with adjacent structures"


# ------------------------------------------------------------------------ measured on images
@pytest.mark.parametrize("lesion_hu, expected", [(10.0, "Hypodense"), (55.0, "Isodense"), (120.0, "Hyperdense")])
def test_density_against_the_surrounding_organ(lesion_hu, expected):
    attribute = A.density(scene(lesion_hu=lesion_hu))
    assert attribute.value == expected and attribute.source == "rule"
    assert attribute.rule.measured == pytest.approx(lesion_hu - 60.0, abs=2.0)
    assert attribute.rule.supporting["reference_mean_hu"] == pytest.approx(60.0, abs=1.0)
    assert "liver tissue" in attribute.rule.rule


def test_lung_nodule_density_is_judged_against_soft_tissue_not_air():
    organs = np.zeros(SHAPE, np.int32)
    organs[4:44, 4:44, 4:44] = 12  # lung_upper_lobe_right
    ctx = scene(lesion_hu=45.0, organ_hu=-850.0, organs=organs, lesion_type="lung_tumor")
    ctx.host_group = "lung"
    attribute = A.density(ctx)
    assert attribute.value == "Isodense" and "soft tissue" in attribute.rule.rule


def test_heterogeneity_follows_the_hu_spread():
    assert A.heterogeneity(scene(noise=5.0)).value == "Homogeneous"
    het = A.heterogeneity(scene(noise=40.0))
    assert het.value == "Heterogeneous" and het.rule.measured == pytest.approx(40.0, rel=0.1)


def test_surface_sharp_versus_blurred_edge():
    sharp = A.surface(scene(blur_mm=0.0))
    blurred = A.surface(scene(blur_mm=2.5))
    assert sharp.value == "Well-defined margin" and sharp.rule.measured > 0.85
    assert blurred.value == "Ill-defined margin" and blurred.rule.measured < A.SURFACE_SHARPNESS_MIN
    faint = A.surface(scene(lesion_hu=52.0))  # 8 HU from the liver: no visible margin at all
    assert faint.value == "Ill-defined margin" and faint.rule.measurement == "lesion-to-surroundings contrast"


def test_shape_round_irregular_punctate_and_wall():
    assert A.shape(scene()).value == "Round-like"
    lobulated = ball(8)
    for offset in ((0, 11, 0), (0, -11, 0), (0, 0, 11), (11, 0, 0), (-11, 0, 0), (0, 0, -11)):
        lobulated |= ball(5.5, centre=tuple(24 + o for o in offset))
    irregular = A.shape(scene(lesion=lobulated))
    assert irregular.value == "Irregular" and irregular.rule.measured < A.SPHERICITY_ROUND_MIN
    assert A.shape(scene(lesion=ball(3))).value == "Punctate, nodular"
    # A 4 mm thick wall around a lumen (a hollow organ), 36 mm across.
    k, j, i = np.meshgrid(*[np.arange(n) for n in SHAPE], indexing="ij")
    radius = np.hypot(j - 24, i - 24)
    wall = (radius >= 14) & (radius < 18) & (k >= 10) & (k < 38) & (i > 24)
    organs = np.zeros(SHAPE, np.int32)
    organs[radius < 20] = STOMACH
    ctx = scene(lesion=wall, organs=organs, lesion_type="gastric_cancer")
    ctx.host_group = "stomach"
    thick = A.shape(ctx)
    assert thick.value == "Wall thickening" and thick.rule.measured < A.WALL_THICKNESS_RATIO_MAX


def test_invasion_from_contact_with_another_organ():
    organs = np.zeros(SHAPE, np.int32)
    organs[4:44, 4:44, 4:44] = LIVER
    inside = A.invasion(scene(organs=organs))
    assert inside.value == "No close relationship with adjacent structures" and inside.rule.measured == 0
    organs[:, :, 30:] = np.where(organs[:, :, 30:] > 0, STOMACH, 0)  # stomach abuts the lesion
    touching = A.invasion(scene(organs=organs))
    assert touching.value == "Close relationship with adjacent structures"
    assert touching.rule.supporting["contact_stomach"] == pytest.approx(touching.rule.measured)
    ctx = scene()
    ctx.organs = None
    assert A.invasion(ctx).value is None and "needs an organ mask" in A.invasion(ctx).rule.rule


def test_every_value_is_in_pastas_vocabulary_and_explains_itself():
    attrs = A.compute_attributes(scene())
    assert list(attrs) == list(ATTRIBUTE_OPTIONS)
    for name, attribute in attrs.items():
        assert attribute.value in ATTRIBUTE_OPTIONS[name]
        assert attribute.rule.value == attribute.value
        assert attribute.rule.measurement and attribute.rule.rule and attribute.rule.threshold is not None


def test_a_learned_head_overrides_but_keeps_the_rule():
    attrs = A.compute_attributes(scene())
    rule_value = attrs["Shape"].value
    A.apply_model_predictions(attrs, {"Shape": ModelPrediction("Irregular", {"Irregular": 0.7}, "pasta-demo")})
    assert attrs["Shape"].value == "Irregular" and attrs["Shape"].source == "model"
    assert attrs["Shape"].rule.value == rule_value and attrs["Shape"].model.model_id == "pasta-demo"
    with pytest.raises(ValueError, match="not a Shape option"):
        A.apply_model_predictions(attrs, {"Shape": ModelPrediction("Cystic", {}, "x")})
