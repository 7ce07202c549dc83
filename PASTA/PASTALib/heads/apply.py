"""``pasta analyze --head``: each finding's PASTA features through learned heads, into the report.

Features are extracted exactly as ``pasta features`` does, with the crop settings each head was
trained with. A head is refused before any segmentation runs if it was trained on another model's
features (feature dimension, then weights SHA256) or on organ rows. A ``stage`` head whose classes
are T categories also fills the finding's ``staging.model`` through :class:`.staging.StagingHead`
(the rule's category stays beside it); every head's output is listed under ``finding.heads``.
"""

from __future__ import annotations

import logging
import re
from typing import Sequence

from PASTALib.errors import PastaInputError
from PASTALib.io.volume import Volume

from .head_file import Head, HeadOutput, load

log = logging.getLogger(__name__)

_T_CATEGORY = re.compile(r"^T[0-4][a-c]?$|^Tis$|^TX$|^T0$")
_STAGED = ("size_based", "not_applicable_from_size")


def load_heads(paths: Sequence[str]) -> list[Head]:
    """Read and validate every head file; organ-level heads cannot describe a finding."""
    heads = [load(p) for p in paths]
    for head in heads:
        if head.kind != "finding":
            raise PastaInputError(f"Head {head.name} was trained on {head.kind} features; `pasta analyze` "
                                  "predicts per finding.", "Fit the head on finding rows of `pasta features`.")
    return heads


def check_heads(heads: Sequence[Head], model) -> None:
    """Refuse heads trained on another model's features, before the segmentation runs."""
    from .features import model_sha256

    config = model.config
    dimension = int(config.stage_widths[config.num_pool - 1])
    name = str(model.provenance.get("name") or model.source.name)
    for head in heads:
        head.check_model(dimension, model_sha256(model), name)


class _StagingFromHead:
    """Adapter to :class:`.staging.StagingHead`: a T-category head's prediction per finding id."""

    def __init__(self, predictions: dict) -> None:
        self.predictions = predictions

    def predict(self, finding):
        if finding.staging.status not in _STAGED:
            return None
        return self.predictions.get(finding.id)


def apply_heads(heads: Sequence[Head], analysis, image: Volume, model, device: str = "auto",
                progress=None) -> None:
    """Add every head's prediction to every finding of ``analysis.report`` (in place)."""
    from PASTALib.report import staging
    from PASTALib.report.impression import build_impression
    from PASTALib.report.model import ModelPrediction

    from .features import CropSettings, FeatureExtractor, Item

    report = analysis.report
    if not heads or not report.findings:
        return
    items = [Item(f.id, "", "finding", f.lesion_type.key, f.component.voxel_count, analysis.regions[f.id].box,
                  analysis.regions[f.id].mask) for f in report.findings]
    features_by_crop: dict[str, object] = {}
    stage_predictions: dict = {}
    extractor = None
    for number, head in enumerate(heads):
        key = repr(sorted(head.crop.items()))
        if key not in features_by_crop:
            if extractor is None:
                extractor = FeatureExtractor(model, device, CropSettings.from_dict(head.crop))
            extractor.use(CropSettings.from_dict(head.crop))
            def step(done: int, total: int, item_id: str, start: float = number / len(heads)) -> None:
                if progress is not None:  # also a cancellation point
                    progress.report("heads", start + done / max(total, 1) / len(heads), f"features of {item_id}")

            features_by_crop[key] = extractor.features(image, items, step)
        outputs = head.predict(features_by_crop[key])
        for finding, output in zip(report.findings, outputs):
            finding.heads.append(_prediction(head, output, finding))
        if head.task == "stage" and all(_T_CATEGORY.match(c) for c in head.classes):
            for finding, output in zip(report.findings, outputs):
                stage_predictions.setdefault(finding.id, ModelPrediction(
                    output.value, output.probabilities, f"head {head.name} (SHA256 {head.sha256[:12]})"))
    if stage_predictions:
        staging.stage_findings(report.findings, _StagingFromHead(stage_predictions))
        report.impression = build_impression(report.findings, report.dropped)
    report.provenance.notes.append(
        "Learned heads: " + "; ".join(f"{h.name} ({h.task}, SHA256 {h.sha256[:12]}, trained on "
                                      f"{h.data['training']['size']} rows)" for h in heads) + ".")


def _prediction(head: Head, output: HeadOutput, finding):
    """The report's record of one head's output for one finding, with the head's provenance."""
    from PASTALib.report.model import HeadPrediction, HeadProvenance

    metric, value = head.cv_metric
    notes = []
    trained_on = head.data["training"].get("names", [])
    if trained_on and finding.lesion_type.key not in trained_on:
        notes.append(f"The head was trained on {', '.join(trained_on)}, not on {finding.lesion_type.key}: "
                     "its output here is an extrapolation.")
    if head.extrapolates(output):
        notes.append(f"This finding's features lie far outside the head's training range (largest standardised "
                     f"feature {output.max_abs_z:.1f}, at most {head.data['training']['max_abs_z']:.1f} in "
                     "training): its output here is an extrapolation.")
    provenance = HeadProvenance(
        file=head.name, sha256=head.sha256, task=head.task, training_size=int(head.data["training"]["size"]),
        cv_metric=metric, cv_value=value, cv_folds=int(head.data["cv"]["folds"]),
        features_model=head.model_name, features_model_sha256=head.model_sha256, created=head.data["created"])
    return HeadPrediction(head.task, output.value, output.probabilities, output.risk_score,
                           output.relative_hazard, output.survival, notes, provenance)

