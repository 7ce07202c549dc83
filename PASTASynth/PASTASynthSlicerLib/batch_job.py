"""A ``pasta synth-batch`` run from the scene: write the current host if asked, build the command.

The module's Batch panel runs the command with the PASTA module's
:class:`PASTASlicerLib.process_runner.ProcessRunner` (JSON progress, Cancel ends the process
tree), so a long dataset build never blocks Slicer and a crash cannot take it down.
MRML/numpy only (no Qt).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from PASTALib.errors import PastaInputError
from PASTASlicerLib import process_runner

#: Names of the current host's files in its host folder (synth-batch finds the mask by "total").
HOST_IMAGE, HOST_ORGANS = "ct.nrrd", "total.nrrd"


@dataclass
class BatchJob:
    command: list
    env: dict
    out_dir: Path
    work_dir: Optional[Path]  #: temporary folder: the current host's copy and the log (see cleanup)

    @property
    def log_path(self) -> Optional[Path]:
        return self.work_dir / "synth-batch.log" if self.work_dir is not None else None


def write_current_host(host_node, organ_node, hosts_dir: Path) -> Path:
    """``hosts_dir/<host name>/ct.nrrd`` and ``total.nrrd`` (TotalSegmentator v2 ids) from the scene."""
    from PASTALib.io.volume_io import write_volume
    from PASTASlicerLib.analysis import write_organs
    from PASTASlicerLib.volume_nodes import node_to_volume

    if host_node is None:
        raise PastaInputError("No host volume is selected.", "Choose a CT volume as host.")
    if organ_node is None:
        raise PastaInputError("A batch run needs the host's organ segmentation.",
                              "Select an organ segmentation (e.g. from TotalSegmentator) for the host.")
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", host_node.GetName()).strip("_") or "host"
    folder = Path(hosts_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    write_volume(node_to_volume(host_node), folder / HOST_IMAGE, overwrite=True, compress=False)
    write_organs(organ_node, host_node, folder / HOST_ORGANS)
    return folder


def batch_command(python: str, hosts_dir: str | Path, out_dir: str | Path, per_type: int,
                  types: Sequence[str] = (), seed: int = 0, workers: int = 1) -> list[str]:
    """The ``python -m PASTALib synth-batch`` command line (JSON progress)."""
    command = [python, "-m", "PASTALib", "synth-batch", "--hosts", str(hosts_dir), "-o", str(out_dir),
               "--per-type", str(int(per_type)), "--seed", str(int(seed)), "--workers", str(max(1, int(workers))),
               "--progress", "json"]
    return command + (["--types", *types] if types else [])


def prepare_batch(out_dir: str | Path, per_type: int, *, module_dirs: Sequence[str | Path],
                  hosts_dir: Optional[str | Path] = None, host_node=None, organ_node=None,
                  work_dir: Optional[str | Path] = None, types: Sequence[str] = (), seed: int = 0,
                  workers: int = 1, python: Optional[str] = None) -> BatchJob:
    """A batch over a folder of hosts, or over the current host written to ``work_dir``.

    ``module_dirs`` go on the child's PYTHONPATH (the PASTA and PASTASynth module folders), so
    the child imports the same PASTALib and PASTASynthLib as Slicer.
    """
    if not str(out_dir or "").strip():
        raise PastaInputError("No output folder is chosen for the dataset.", "Choose an output folder.")
    if per_type < 1:
        raise PastaInputError(f"Cases per type must be at least 1, not {per_type}.", "Set it to 1 or more.")
    out_dir = Path(out_dir)
    if hosts_dir is None:
        if work_dir is None:
            raise PastaInputError("No folder to write the current host to.", "This is a bug; please report it.")
        work_dir = Path(work_dir)
        write_current_host(host_node, organ_node, work_dir / "hosts")
        hosts_dir = work_dir / "hosts"
    elif not Path(hosts_dir).is_dir():
        raise PastaInputError(f"The hosts folder {hosts_dir} does not exist.",
                              "Choose a folder of host folders, each with a CT and its organ mask.")
    hosts = Path(hosts_dir).resolve()
    if out_dir.resolve() == hosts or hosts in out_dir.resolve().parents:
        raise PastaInputError("The dataset folder is inside the hosts folder, where it would be taken for a host.",
                              "Choose a dataset folder outside the hosts folder.")
    dirs = [str(d) for d in module_dirs]
    env = process_runner.child_environment(dirs[0])
    paths = dirs + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    command = batch_command(python or process_runner.python_executable(), hosts_dir, out_dir, per_type,
                            types, seed, workers)
    return BatchJob(command, env, out_dir, Path(work_dir) if work_dir is not None else None)


def cleanup(job: BatchJob) -> None:
    """Remove the temporary copy of the current host (the dataset stays)."""
    if job.work_dir is not None:
        shutil.rmtree(job.work_dir, ignore_errors=True)
