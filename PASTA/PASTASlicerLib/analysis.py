"""One analysis run from the scene's point of view: write the inputs, build the command, import.

The module's Apply button uses it as: :func:`prepare_analysis` (input volume and optional organ
segmentation written to a work folder, exactly on the volume's grid) -> a
:class:`.process_runner.ProcessRunner` on :attr:`AnalysisJob.command` -> :func:`finish_analysis`
(results imported as new nodes) -> :func:`cleanup` (work folder removed). Cancel or failure skips
the import, so the scene stays as it was.

MRML/numpy only (no Qt): tested end to end on slicer-core with a real subprocess.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from PASTALib.analysis.options import AnalysisOptions
from PASTALib.errors import PastaInputError

from . import process_runner
from .results_import import ImportedResults, import_results, model_class_map

log = logging.getLogger(__name__)

INPUT_FILE = "input_ct.nrrd"
ORGANS_FILE = "organs.nrrd"
OUTPUT_DIR = "output"


@dataclass
class AnalysisJob:
    input_node_id: str
    work_dir: Path
    out_dir: Path
    command: list
    env: dict
    class_map: dict
    notes: list = field(default_factory=list)  #: e.g. organ segments that were not recognised
    #: things to confirm before the run starts (e.g. none of the model's organs in the organ input)
    warnings: list = field(default_factory=list)
    options: Optional[AnalysisOptions] = None  #: what the command runs

    @property
    def log_path(self) -> Path:
        return self.work_dir / "pasta.log"


def organ_label_ids(segments: dict[int, tuple[str, Optional[str]]]) -> tuple[dict[int, int], list[str]]:
    """Map exported segment labels to TotalSegmentator v2 ids by terminology codes, then by name
    ("left kidney", "kidney_left"): :func:`PASTALib.lesions.organ_terms.map_segments`.

    ``segments``: label -> (segment name, terminology entry). Returns (segment label -> organ id, names
    not recognised). PASTA's organ logic reads v2 ids.
    """
    from PASTALib.lesions.organ_terms import map_segments

    return map_segments(segments)


#: What the panel says when no organ segmentation is chosen.
NO_ORGANS_TEXT = "No organ segmentation: only the lung (found by thresholding) is searched."


def organ_summary(segmentation_node, input_node=None) -> str:
    """What the panel shows under the organ selector: the segments recognised as organs and the ones
    that will be ignored, and whether they will be resampled onto the CT, before anything runs (they used
    to reach only the log)."""
    from PASTALib.lesions.anatomy import totalsegmentator_v2_names

    from .organ_checks import grid_note
    from .volume_nodes import segment_terms

    if segmentation_node is None:
        return NO_ORGANS_TEXT
    terms = segment_terms(segmentation_node)
    mapping, unknown = organ_label_ids({index + 1: term for index, term in enumerate(terms)})
    names = totalsegmentator_v2_names()
    organs = sorted({names.get(organ, str(organ)) for organ in mapping.values()})
    shown = ", ".join(organs[:8]) + (f" and {len(organs) - 8} more" if len(organs) > 8 else "")
    text = (f"{len(mapping)} of {len(terms)} segments recognised as organs ({shown})." if mapping else
            f"None of the {len(terms)} segments is a TotalSegmentator organ: only the lung (by thresholding) "
            "will be searched.")
    if unknown:
        text += f" Not recognised, ignored: {', '.join(sorted(unknown))}."
    note = grid_note(segmentation_node, input_node)
    return f"{text} {note}" if note else text


def write_organs(organ_node, input_node, path: Path) -> tuple[list[str], list[int]]:
    """Write an organ segmentation or label map on the input's grid, as TotalSegmentator v2 ids; (notes, the
    organ ids present on the input's grid)."""
    import numpy as np

    from PASTALib.io.volume_io import write_volume

    from .volume_nodes import node_to_volume, segment_terms, segmentation_to_volume

    if organ_node.IsA("vtkMRMLSegmentationNode"):
        volume, names = segmentation_to_volume(organ_node, input_node)
        terms = segment_terms(organ_node)
        mapping, unknown = organ_label_ids({label: terms[label - 1] for label in names})
        if not mapping:
            raise PastaInputError(f"No segment of '{organ_node.GetName()}' is a TotalSegmentator organ "
                                  f"({', '.join(sorted(unknown)[:5])}…).",
                                  "Use a TotalSegmentator segmentation, or run without organs.")
        organs = np.zeros(volume.array.shape, np.uint8)
        for label, organ in mapping.items():
            organs[volume.array == label] = organ
        volume = volume.with_array(organs)
    else:
        volume, unknown = node_to_volume(organ_node), []
    write_volume(volume, path, overwrite=True, compress=False)
    present = [int(i) for i in np.unique(volume.array) if i > 0]
    return [f"organ segment not recognised, ignored: {name}" for name in unknown], present


def prepare_analysis(input_node, options: AnalysisOptions, work_dir: str | Path, module_dir: str | Path, *,
                     organ_node=None, python: Optional[str] = None) -> AnalysisJob:
    """Write the inputs into ``work_dir`` and build the ``pasta analyze`` command from ``options``
    (its image, output folder and organs are set here, to the files written).

    Fails early (PastaInputError) when the model's classes do not say which lesion type it finds.
    ``options.model`` may be a bundled model's name (``"default"``); the command gets its folder.
    """
    from PASTALib.io.volume_io import write_volume
    from PASTALib.model.bundled_models import resolve

    from .volume_nodes import node_to_volume

    if input_node is None:
        raise PastaInputError("No CT volume is selected.", "Choose a CT volume as input.")
    model_path = resolve(options.model)
    class_map = model_class_map(model_path, options.lesion_type)  # before any file is written
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    image_path = work_dir / INPUT_FILE
    write_volume(node_to_volume(input_node), image_path, overwrite=True, compress=False)
    notes: list[str] = []
    warnings: list[str] = []
    organs_path = None
    if organ_node is not None:
        from .organ_checks import grid_note, model_organs_note

        organs_path = work_dir / ORGANS_FILE
        notes, present = write_organs(organ_node, input_node, organs_path)
        resampled, out_of_view = grid_note(organ_node, input_node), model_organs_note(class_map, present)
        notes += [resampled] if resampled else []
        warnings += [out_of_view] if out_of_view else []
    out_dir = work_dir / OUTPUT_DIR
    options = dataclasses.replace(options, image=str(image_path), output=str(out_dir), model=str(model_path),
                                  organs=str(organs_path) if organs_path else options.organs)
    command = process_runner.analyze_command(python or process_runner.python_executable(), options)
    env = process_runner.child_environment(module_dir, options.device)
    return AnalysisJob(input_node.GetID(), work_dir, out_dir, command, env, class_map, notes=notes, warnings=warnings,
                       options=options)


def finish_analysis(scene, job: AnalysisJob, name: Optional[str] = None,
                    replace_previous: bool = False) -> ImportedResults:
    """Import a successful run's outputs as new nodes (nothing is added if this fails).

    With ``replace_previous``, the nodes of the latest earlier PASTA run on the same volume are
    removed, but only once the new import has succeeded, and the new nodes take over their names.
    """
    from .replace_results import previous_result, replace_run

    input_node = scene.GetNodeByID(job.input_node_id)
    if input_node is None:
        raise PastaInputError("The input volume was removed from the scene during the analysis.",
                              "Load it again and rerun.")
    previous = previous_result(scene, input_node) if replace_previous else None
    results = import_results(scene, input_node, job.out_dir, name=name)
    if previous is not None:
        removed = replace_run(scene, previous, results, keep_names=name is None)
        log.info("Replaced the previous PASTA result: removed %s", ", ".join(removed))
    return results


def cleanup(job: AnalysisJob) -> None:
    """Remove the run's temporary files (the log is kept by the caller if needed)."""
    shutil.rmtree(job.work_dir, ignore_errors=True)
