"""Every option of one analysis, defined once.

:class:`AnalysisOptions` is what the Slicer panel fills, what :mod:`.pipeline` runs, and what the
``pasta analyze`` / ``pasta segment`` / ``pasta models`` parsers are built from
(:func:`add_arguments`). :meth:`AnalysisOptions.to_argv` turns the object back into the command line
the Slicer module starts, so a new option is one field here, not six hand-written places (SlicerNNUnet's
``Parameter`` plays the same role).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence

from PASTALib.detection.sensitivity import DEFAULT_SENSITIVITY, SENSITIVITIES

#: Option groups: "run" options belong to ``pasta analyze`` only; "inference" ones also to
#: ``pasta segment``; "model" ones also to ``pasta models verify``.
RUN, INFERENCE, MODEL = "run", "inference", "model"


def _option(default: Any, group: str, help: str, flag: Optional[str] = None, **argparse_kwargs: Any):
    """A field with what its command-line form needs (flag defaults to ``--field-name``)."""
    metadata = {"group": group, "help": help, "flag": flag, "argparse": argparse_kwargs}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class AnalysisOptions:
    """One ``pasta analyze`` run. Positional ``image`` and ``output`` come first."""

    image: str = _option("", RUN, "the CT: a file, a DICOM series folder, a bundled sample name, or a folder of "
                         "scans (each analysed into OUTDIR/<case>/, the model loaded once)", flag="image")
    output: str = _option("", RUN, "output folder (created)", flag="-o", metavar="OUTDIR")
    model: str = _option("default", RUN, "a PASTA model folder, an nnU-Net v2 results folder of a fine-tuned "
                         "PASTA model, a checkpoint file, or 'default' (the bundled compact model; the default)")
    no_attribute_heads: bool = _option(False, RUN, "describe attributes by the measurement rules only, even "
                                       "when the model has learned attribute heads")
    lesion_type: Optional[str] = _option(None, RUN, "the lesion type of a model whose classes do not say it "
                                         "(e.g. a fine-tuned PASTA model with classes background, organ, "
                                         "lesion): id or key")
    organs: Optional[str] = _option(None, RUN, "organs for detection, locations and invasion: a TotalSegmentator v2 "
                                    "label map, a Slicer .seg.nrrd (segments recognised by terminology codes or "
                                    "names), or 'auto' (runs the TotalSegmentator package's fast model when it and "
                                    "its weights are installed); for 'sample' its bundled mask is the default",
                                    metavar="ORGANS")
    min_volume: Optional[float] = _option(None, RUN, "drop (and count) smaller findings (default: the model "
                                          "card's component floor, at least 0.02 mL)", type=float,
                                          metavar="ML")
    sensitivity: str = _option(DEFAULT_SENSITIVITY, RUN, "operating point of a detector model (the default model): "
                               "'balanced' (the default) allows about one false finding per healthy scan, "
                               "'strict' fewer, 'high' finds more lesions with more false findings",
                               choices=SENSITIVITIES)
    dicom: bool = _option(False, RUN, "also write DICOM SEG and SR (DICOM input only)")
    force: bool = _option(False, RUN, "run even if the image does not look like CT in HU")
    overwrite: bool = _option(False, RUN, "replace the previous result in OUTDIR (all of it)")
    whole_volume: bool = _option(False, RUN, "run a network over the whole scan even when an organ mask limits it "
                                 "to the organs its lesion types live in (plus 20 mm)")
    head: List[str] = _option([], RUN, "a head from `pasta fit-head` (repeatable): adds its prediction, with "
                              "provenance, to each finding; it must have been trained on this model's "
                              "features", metavar="HEAD")
    device: str = _option("auto", INFERENCE, "where the network runs (default: the GPU when PyTorch sees one)",
                          choices=("auto", "cpu", "cuda"))
    tta: Optional[bool] = _option(None, INFERENCE, "mirroring test-time augmentation (default: on for GPU, off "
                                  "for CPU)")
    overlap: float = _option(0.5, INFERENCE, "sliding-window overlap (default 0.5)", type=float)
    batch_size: Optional[int] = _option(None, INFERENCE, "tiles per forward pass (default: 4; 2 on CPU for "
                                        "tiles over 64^3)", type=int)
    precision: str = _option("auto", INFERENCE, "arithmetic: auto = fp16 autocast on a GPU, fp32 on the CPU; bf16 "
                             "also works on the CPU (2.2x faster per tile on one with AVX-512 BF16; fp32, "
                             "said, on a CPU without native bf16)",
                             choices=("auto", "fp32", "fp16", "bf16"))
    threads: Optional[int] = _option(None, INFERENCE, "CPU threads for PyTorch", type=int)
    folds: Optional[List[int]] = _option(None, MODEL, "nnU-Net results folder: folds to ensemble (default: "
                                         "all present)", type=int, nargs="+")
    checkpoint: str = _option("final", MODEL, "nnU-Net results folder: checkpoint_final.pth or "
                              "checkpoint_best.pth", choices=("final", "best"))
    pasta_defaults: bool = _option(False, MODEL, "run a bare weights file (no plans.json, no model card, e.g. "
                                   "PASTA_final.pth) with PASTA's pretraining preprocessing (1 mm, SLF "
                                   "intensity map); without it such a file is refused, not guessed")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "AnalysisOptions":
        """The options a parser built by :func:`add_arguments` read (absent groups keep defaults)."""
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)})

    def to_argv(self) -> list[str]:
        """``analyze IMAGE -o OUTDIR ...`` with every option that differs from its default."""
        argv = ["analyze", str(self.image), "-o", str(self.output)]
        for f in dataclasses.fields(self):
            value, default = getattr(self, f.name), _default(f)
            if f.name in ("image", "output") or value == default:
                continue
            flag = _flag(f)
            if f.type in ("bool", bool):
                argv.append(flag)
            elif f.name == "tta":
                argv.append("--tta" if value else "--no-tta")
            elif f.name == "head":
                for item in value:
                    argv += [flag, str(item)]
            elif isinstance(value, (list, tuple)):
                argv += [flag, *map(str, value)]
            else:
                argv += [flag, str(value)]
        return argv


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _flag(f: dataclasses.Field) -> str:
    return f.metadata["flag"] or "--" + f.name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, groups: Sequence[str] = (RUN, INFERENCE, MODEL),
                  positional: bool = True) -> None:
    """Add the options of ``groups`` to a parser (``positional``: also IMAGE and -o OUTDIR)."""
    for f in dataclasses.fields(AnalysisOptions):
        meta = f.metadata
        if meta["group"] not in groups or (f.name in ("image", "output") and not positional):
            continue
        kwargs = dict(meta["argparse"], help=meta["help"])
        if f.name == "image":
            parser.add_argument("image", help=meta["help"])
        elif f.name == "output":
            parser.add_argument("-o", "--output", required=True, **kwargs)
        elif f.name == "tta":
            tta = parser.add_mutually_exclusive_group()
            tta.add_argument("--tta", dest="tta", action="store_true", default=None, help=meta["help"])
            tta.add_argument("--no-tta", dest="tta", action="store_false")
        elif f.type in ("bool", bool):
            parser.add_argument(_flag(f), action="store_true", help=meta["help"])
        elif f.name == "head":
            parser.add_argument(_flag(f), action="append", default=[], **kwargs)
        else:
            parser.add_argument(_flag(f), default=_default(f), **kwargs)
