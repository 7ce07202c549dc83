"""``pasta synth-batch``: many cases over many hosts, resumable, with a manifest.

Layout: ``DATASET/<Organ>/<Type>/<host>_<nnnn>/`` (PASTA-Gen-30K folder names from
:mod:`PASTALib.lesions.lesion_types`), ``DATASET/manifest.jsonl`` (one line per finished case: case,
host, type, seed, attributes, SHA256 of each file) and ``DATASET/dataset.json`` (the run's settings
and counts). Each case's seed is a hash of (dataset seed, host, type, index), so results do not
depend on the number of workers or on the order cases run in, and a re-run skips every case whose
folder is complete and listed. Case folders appear atomically (see :mod:`.case_io`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

from PASTALib import __version__
from PASTALib.atomic import atomic_write, output_error
from PASTALib.errors import PastaCancelled, PastaInputError
from PASTALib.hashing import sha256_file
from PASTALib.lifetime import POLL_S, watch_parent
from PASTALib.io.volume_io import images_and_masks
from PASTALib.progress import CancelToken, ProgressReporter
from PASTALib.result_folder import FolderLock

from .catalog import spec_for, specs

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"


@dataclass(frozen=True)
class Job:
    host: str
    image: str
    organs: str
    lesion_type: str
    index: int
    seed: int
    case: str  #: path relative to the dataset folder
    crop: Optional[int] = None


def find_hosts(hosts_dir: Path) -> dict[str, tuple[Path, Path]]:
    """Host name -> (image, organ mask) for each sub-folder of ``hosts_dir``."""
    if not hosts_dir.is_dir():
        raise PastaInputError(f"--hosts {hosts_dir} is not a folder.",
                              "Give a folder of host folders, each with an image and an organ mask.")
    hosts = {}
    for folder in sorted(p for p in hosts_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images, masks = images_and_masks(folder)
        if len(images) != 1 or len(masks) != 1:
            raise PastaInputError(
                f"Host folder {folder} needs exactly one image and one organ mask; found images "
                f"{[p.name for p in images]} and masks {[p.name for p in masks]}.",
                "Name the mask with 'total', 'organ', 'seg' or 'mask' in it (e.g. total.nii.gz).")
        hosts[folder.name] = (images[0], masks[0])
    if not hosts:
        raise PastaInputError(f"No host folders in {hosts_dir}.", "Put one folder per host scan there.")
    return hosts


def case_seed(dataset_seed: int, host: str, lesion_type: str, index: int) -> int:
    digest = hashlib.sha256(f"{dataset_seed}/{host}/{lesion_type}/{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


_HOSTS: dict = {}  #: per-process cache: (image, organs) -> Host


def _host(image: str, organs: str):
    from PASTALib.io.volume_io import read_volume

    from .host import make_host

    key = (image, organs)
    if key not in _HOSTS:
        _HOSTS.clear()  # keep one host in memory per worker
        _HOSTS[key] = make_host(read_volume(image), read_volume(organs))
    return _HOSTS[key]


def make_case(job: Job, dataset_dir: str) -> dict:
    """Synthesize and write one case; return its manifest record (runs in a worker)."""
    from .case_io import CASE_FILES, write_case
    from .engine import LesionRequest, synthesize

    host = _host(job.image, job.organs)
    request = LesionRequest(job.lesion_type, seed=job.seed)
    result = synthesize(host, request)
    folder = Path(dataset_dir) / job.case
    write_case(result, host, folder, {"lesion_type": job.lesion_type, "seed": job.seed, "index": job.index},
               job.host, crop=job.crop, overwrite=True)
    return {"case": job.case, "host": job.host, "type": job.lesion_type, "index": job.index,
            "seed": job.seed,
            "lesions": [{"organ": l.record["organ"], "size_mm": l.size_mm, "attributes": l.attributes,
                         "seed_ras": l.record["seed_ras"]} for l in result.lesions],
            "files": {name: sha256_file(folder / name) for name in CASE_FILES}}


def _read_manifest(path: Path) -> dict[str, dict]:
    records = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a crash: that case is redone
                    continue
                records[record["case"]] = record
    return records


def plan(hosts: dict[str, tuple[Path, Path]], types: Sequence[str], per_type: int, seed: int,
         crop: Optional[int]) -> tuple[list[Job], list[dict]]:
    """All jobs, and the (host, type) pairs skipped because the host lacks the organ."""
    import numpy as np

    from PASTALib.io.volume_io import read_volume
    from PASTALib.lesions.anatomy import totalsegmentator_v2_names

    jobs, skipped = [], []
    names = totalsegmentator_v2_names()
    for host, (image, organs) in hosts.items():
        present = {names.get(int(v), "") for v in np.unique(read_volume(organs).array)}
        for key in types:
            spec = spec_for(key)
            if not any(_matches(spec, n) for n in present):
                skipped.append({"host": host, "type": key, "reason": f"no {spec.type.organ} in the mask"})
                continue
            for index in range(per_type):
                case = f"{spec.type.folder}/{host}_{index:04d}"
                jobs.append(Job(host, str(image), str(organs), key, index,
                                case_seed(seed, host, key, index), case, crop))
    return jobs, skipped


def _matches(spec, name: str) -> bool:
    from .catalog import organ_names_match

    return bool(name) and organ_names_match(spec, name)


def run_dataset(hosts_dir: Path, out_dir: Path, per_type: int, types: Optional[Iterable[str]] = None,
                seed: int = 0, workers: int = 1, scheduler: Optional[str] = None,
                crop: Optional[int] = None, progress: Optional[ProgressReporter] = None) -> dict:
    """Build (or complete) a dataset; returns a summary of done, skipped and failed cases.

    The dataset folder is locked for the run (a second batch into it is refused at start); case
    folders half-written by a killed run are removed first. Cancelled, it keeps the complete cases
    (each listed in the manifest) and says how many.
    """
    progress = progress or ProgressReporter()
    if per_type < 1:
        raise PastaInputError(f"--per-type {per_type} must be at least 1.", "Use --per-type 1 or more.")
    keys = [spec_for(t).key for t in types] if types else [spec.key for spec in specs()]
    hosts = find_hosts(hosts_dir)
    jobs, skipped = plan(hosts, keys, per_type, seed, crop)
    if out_dir.exists() and not out_dir.is_dir():
        raise PastaInputError(f"{out_dir} is a file; a dataset is written as a folder.", "Pass a folder with -o.")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(out_dir, exc) from exc
    with FolderLock(out_dir):
        remove_partial_cases(out_dir)
        return _run_locked(hosts, keys, jobs, skipped, out_dir, per_type, seed, crop, workers, scheduler, progress)


def remove_partial_cases(out_dir: Path) -> list[Path]:
    """Case folders a killed run left half-written (hidden, ``.partial``); call only under the lock."""
    from .case_io import PARTIAL_SUFFIX

    leftovers = sorted(out_dir.glob(f"*/*/.*{PARTIAL_SUFFIX}"))
    for folder in leftovers:
        shutil.rmtree(folder, ignore_errors=True)
    if leftovers:
        log.info("Removed %d half-written case folder(s) of an interrupted run.", len(leftovers))
    return leftovers


def _run_locked(hosts, keys, jobs, skipped, out_dir: Path, per_type: int, seed: int, crop, workers: int,
                scheduler: Optional[str], progress: ProgressReporter) -> dict:
    manifest_path = out_dir / MANIFEST
    done = _read_manifest(manifest_path)
    todo = [job for job in jobs if not (job.case in done and (out_dir / job.case).is_dir())]
    failed: list[dict] = []
    progress.report("synth-batch", 0.0, f"{len(todo)} of {len(jobs)} cases to make")
    with open(manifest_path, "a", encoding="utf-8") as manifest:
        def finished(record: dict, count: int) -> None:
            manifest.write(json.dumps(record) + "\n")
            manifest.flush()
            os.fsync(manifest.fileno())
            progress.report("synth-batch", count / max(1, len(todo)), record["case"])

        made = 0
        try:
            # closing(): a cancel raised here, outside the generator, still stops its workers at once
            with closing(_execute(todo, str(out_dir), workers, scheduler, progress.cancel)) as outcomes:
                for count, (job, record, error) in enumerate(outcomes, start=1):
                    if error is None:
                        made += 1
                        finished(record, count)
                    else:
                        failed.append({"case": job.case, "host": job.host, "type": job.lesion_type,
                                       "error": error})
                        progress.report("synth-batch", count / max(1, len(todo)), f"{job.case} failed")
        except (PastaCancelled, KeyboardInterrupt):
            remove_partial_cases(out_dir)
            listed = _read_manifest(manifest_path)
            for job in todo:  # finished by a worker, but not yet listed when the run stopped: not kept
                if job.case not in listed and (out_dir / job.case).is_dir():
                    shutil.rmtree(out_dir / job.case, ignore_errors=True)
            raise PastaCancelled(
                f"Cancelled: {made} new case(s) complete and listed in {manifest_path} "
                f"({len(jobs) - len(todo) + made} of {len(jobs)} in all); nothing half-written was kept. "
                "Run the same command again to finish the dataset.") from None
    summary = {"dataset": str(out_dir), "software_version": __version__, "hosts": sorted(hosts),
               "types": keys, "per_type": per_type, "seed": seed, "crop_1mm": crop,
               "planned": len(jobs), "made": made, "already_done": len(jobs) - len(todo),
               "skipped": skipped, "failed": failed}
    atomic_write(out_dir / "dataset.json", json.dumps(summary, indent=1) + "\n", overwrite=True)
    return summary


def _execute(jobs: list[Job], out_dir: str, workers: int, scheduler: Optional[str], cancel: CancelToken):
    """Yield (job, record, error message) as jobs finish, locally or on a Dask cluster."""
    if scheduler:
        try:
            from distributed import Client
            from distributed import as_completed as dask_completed
        except ImportError:
            raise PastaInputError("--scheduler needs Dask distributed, which is not installed.",
                                  "Install the 'batch' extra (pip install 'pasta-slicer[batch]') or use --workers.") from None
        with Client(scheduler) as client:
            futures = {client.submit(_safe_case, job, out_dir, pure=False): job for job in jobs}
            for future in dask_completed(futures):
                cancel.raise_if_cancelled()
                yield (futures[future], *future.result())
        return
    if workers <= 1:
        for job in jobs:
            cancel.raise_if_cancelled()
            yield (job, *_safe_case(job, out_dir))
        return
    pool = ProcessPoolExecutor(max_workers=workers, initializer=worker_init, initargs=(os.getpid(),))
    try:
        pending = {pool.submit(_safe_case, job, out_dir): job for job in jobs}
        while pending:
            done, _ = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
            cancel.raise_if_cancelled()
            for future in done:
                yield (pending.pop(future), *future.result())
    except BaseException:
        _stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """End the workers now (a cancelled case is not worth finishing; its .partial folder is removed)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python 3.14+
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def worker_init(parent_pid: int) -> None:
    """In each worker: Ctrl-C is the parent's to handle (it stops the workers), SIGTERM ends the worker
    (the parent's cancel handler must not be inherited), and the worker ends when its parent dies,
    even by ``kill -9`` (a watchdog thread; no orphan keeps writing)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    watch_parent(parent_pid, lambda: os._exit(1))


def _safe_case(job: Job, out_dir: str) -> tuple[Optional[dict], Optional[str]]:
    """A case's record, or the user-facing reason it could not be made (bugs still raise)."""
    try:
        return make_case(job, out_dir), None
    except PastaInputError as exc:
        return None, exc.problem


def job_dict(job: Job) -> dict:
    return asdict(job)
