"""Outputs are written whole or not at all: full disk, read-only folder, a file where a folder should
be, two runs into one folder, --overwrite over an earlier result, cancellation while writing.

A full disk is a real small tmpfs where this machine lets the test mount one (root in a container
with CAP_SYS_ADMIN, as in CI), and a real per-process file-size limit (RLIMIT_FSIZE) everywhere on
POSIX.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from PASTALib.atomic import atomic_write
from PASTALib.cli import main as cli
from PASTALib.errors import PastaCancelled, PastaInputError
from PASTALib.io.volume_io import read_volume, verify_written, write_volume
from PASTALib.progress import ProgressReporter
from PASTALib.result_folder import LOCK, MANIFEST, STAGING_PREFIX, FolderLock

from conftest import REPO

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file-system semantics")


def run_pasta(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main([*argv, "--progress", "none"])
    return code, capsys.readouterr().err


def _mount(target: Path, options: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB file system: big enough for a report, far too small for a CT."""
    target = tmp_path / "small_disk"
    _mount(target, "size=256k")
    yield target
    subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture
def read_only_folder(tmp_path):
    target = tmp_path / "read_only"
    if os.geteuid() != 0:  # permissions bind a normal user; root needs a read-only file system
        target.mkdir()
        target.chmod(0o555)
        yield target
        target.chmod(0o755)
        return
    _mount(target, "ro,size=64k")
    yield target
    subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture
def lesion_map(tmp_path, sample_paths) -> tuple[Path, Path]:
    """(two-lesion map, one-lesion map) on the bundled sample: a liver tumour and a kidney cyst."""
    image = read_volume(sample_paths["sample"])
    organs = read_volume(sample_paths["sample-organs"])
    labels = np.zeros(image.array.shape, np.int16)
    k, j, i = np.argwhere(organs.array == 5).mean(axis=0).round().astype(int)
    labels[k - 3:k + 3, j - 4:j + 4, i - 4:i + 4] = 2
    one = write_volume(image.with_array(labels), tmp_path / "one.nii.gz")
    k, j, i = np.argwhere(organs.array == 2).mean(axis=0).round().astype(int)
    labels[k - 2:k + 2, j - 2:j + 2, i - 2:i + 2] = 14
    return write_volume(image.with_array(labels), tmp_path / "two.nii.gz"), one


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ------------------------------------------------------------------ full disk
@posix_only
def test_full_disk_convert_exits_2_and_leaves_no_file(small_disk, capsys):
    code, err = run_pasta(capsys, "convert", "sample", "-o", str(small_disk / "ct.nii.gz"))
    assert code == 2, err
    assert "No space left to write" in err and str(small_disk / "ct.nii.gz") in err
    assert _entries(small_disk) == []  # neither the file nor its temporary


@posix_only
def test_file_size_limit_convert_exits_2_and_leaves_no_file(tmp_path):
    """RLIMIT_FSIZE makes every write past 200 KB fail (EFBIG), as a full disk does."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    out = tmp_path / "ct.nrrd"
    result = subprocess.run([sys.executable, "-m", "PASTALib", "convert", "sample", "-o", str(out),
                             "--progress", "none"], capture_output=True, text=True, cwd=REPO / "PASTA",
                            preexec_fn=limit)
    assert result.returncode == 2, result.stderr
    assert str(out) in result.stderr and "internal error" not in result.stderr
    assert _entries(tmp_path) == []


@posix_only
def test_full_disk_analyze_leaves_no_half_result(small_disk, capsys):
    """The report folder fits on the disk but the label maps do not: nothing at all remains."""
    out = small_disk / "result"
    code, err = run_pasta(capsys, "analyze", "sample-lesions", "-o", str(out))
    assert code == 2, err
    assert "No space left" in err
    assert _entries(small_disk) == []
    code, err = run_pasta(capsys, "synth", "sample", "--lesion", "liver_cyst", "-o", str(small_disk / "case"))
    assert code == 2 and "No space left" in err, err
    assert _entries(small_disk) == []


def test_a_write_that_does_not_read_back_is_refused(tmp_path, sample_paths):
    """The check after the flush: a truncated volume never gets its real name."""
    image = read_volume(sample_paths["sample"])
    whole = write_volume(image, tmp_path / "whole.nii")

    def truncated_writer(temporary: str) -> None:
        Path(temporary).write_bytes(whole.read_bytes()[:100_000])

    with pytest.raises(PastaInputError, match="does not read back"):
        atomic_write(tmp_path / "cut.nii", truncated_writer, suffix=".nii",
                     verify=lambda t: verify_written(t, image.array.shape[::-1]))
    assert _entries(tmp_path) == ["whole.nii"]
    with pytest.raises(OSError, match="holds"):  # right length, wrong grid
        verify_written(whole, (1, 2, 3))


def test_an_os_refusal_anywhere_is_exit_2_not_an_internal_error(monkeypatch, capsys):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/data/out/x.nii.gz")

    monkeypatch.setattr("PASTALib.cli.info.intensity_stats", full)
    code, err = run_pasta(capsys, "info", "sample")
    assert code == 2 and "No space left to write /data/out/x.nii.gz" in err and "internal" not in err


# ------------------------------------------------------------------ where outputs may go
@posix_only
def test_read_only_output_folder_exits_2_before_any_work(read_only_folder, capsys, lesion_map):
    code, err = run_pasta(capsys, "convert", "sample", "-o", str(read_only_folder / "ct.nii.gz"))
    assert code == 2 and str(read_only_folder) in err, err
    code, err = run_pasta(capsys, "report", "sample", str(lesion_map[0]), "-o", str(read_only_folder / "r"))
    assert code == 2 and "read-only" in err or "permission" in err, err
    assert "reading" not in err  # refused at start
    code, err = run_pasta(capsys, "synth", "sample", "--lesion", "liver_cyst", "-o", str(read_only_folder / "c"))
    assert code == 2 and "internal error" not in err, err


@pytest.mark.parametrize("command", [
    ("analyze", "sample"), ("report", "sample", "SEG"), ("synth", "sample", "--lesion", "liver_cyst")])
def test_output_naming_an_existing_file_exits_2_and_keeps_it(command, tmp_path, capsys, lesion_map):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    argv = [str(lesion_map[0]) if part == "SEG" else part for part in command]
    code, err = run_pasta(capsys, *argv, "-o", str(target))
    assert code == 2, err
    assert "is a file" in err and "internal error" not in err
    assert target.read_text() == "keep me"


# ------------------------------------------------------------------ one run per folder
def test_second_run_into_a_claimed_folder_is_refused_at_start(tmp_path, capsys, lesion_map, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    read = []
    monkeypatch.setattr("PASTALib.cli.report.read_volume", lambda *a: read.append(a) or pytest.fail("read"))
    with FolderLock(out):
        code, err = run_pasta(capsys, "report", "sample", str(lesion_map[0]), "-o", str(out))
    assert code == 2 and "Another PASTA run" in err and f"process {os.getpid()}" in err
    assert read == [] and _entries(out) == []


@posix_only
def test_the_lock_dies_with_its_process_even_on_kill_9(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom PASTALib.result_folder import "
                               f"FolderLock\nFolderLock(__import__('pathlib').Path({str(out)!r})).acquire()\n"
                               "print('locked', flush=True)\ntime.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, cwd=REPO / "PASTA")
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(PastaInputError, match="Another PASTA run"):
            FolderLock(out).acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        with FolderLock(out):
            assert (out / LOCK).exists()
        assert not (out / LOCK).exists()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


# ------------------------------------------------------------------ --overwrite and cancellation
def test_overwrite_replaces_the_whole_previous_result(tmp_path, capsys, lesion_map):
    two, one = lesion_map
    out = tmp_path / "out"
    assert run_pasta(capsys, "report", "sample", str(two), "-o", str(out))[0] == 0
    assert _entries(out / "key_images") == ["F1.png", "F2.png"]
    (out / "my_notes.txt").write_text("the reader's own file")
    (out / (STAGING_PREFIX + "killed")).mkdir()  # what a kill -9 leaves
    code, err = run_pasta(capsys, "report", "sample", str(one), "-o", str(out), "--overwrite")
    assert code == 0, err
    assert _entries(out / "key_images") == ["F1.png"]  # no stale F2 from the first run
    assert len(json.loads((out / "report.json").read_text())["findings"]) == 1
    assert (out / "my_notes.txt").read_text() == "the reader's own file"
    assert not any(name.startswith(STAGING_PREFIX) for name in _entries(out))
    assert set(json.loads((out / MANIFEST).read_text())["files"]) == {
        "findings.json", "report.json", "report.md", "report.html", "key_images"}


class CancelAt(ProgressReporter):
    """Cancels (as Ctrl-C does) when the run reaches ``stage``."""

    def __init__(self, stage: str) -> None:
        super().__init__()
        self.at = stage

    def report(self, stage: str, fraction=None, message: str = "") -> None:
        if stage == self.at:
            self.cancel.cancel()
        super().report(stage, fraction, message)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("stage", ["rendering", "writing"])
def test_cancel_while_writing_keeps_the_previous_result_untouched(stage, tmp_path, capsys, lesion_map):
    two, one = lesion_map
    out = tmp_path / "out"
    assert run_pasta(capsys, "report", "sample", str(two), "-o", str(out))[0] == 0
    before = _snapshot(out)
    args = cli.build_parser().parse_args(["report", "sample", str(one), "-o", str(out), "--overwrite"])
    with pytest.raises(PastaCancelled):
        args._run(args, CancelAt(stage))
    assert _snapshot(out) == before


@pytest.mark.parametrize("stage", ["findings", "rendering"])
def test_cancelled_analysis_into_a_new_folder_leaves_no_folder(stage, tmp_path):
    """Ctrl-C after the segmentation was made (findings) or while writing (rendering): no file remains,
    so "no output was written" is true and a rerun is not blocked."""
    from PASTALib.analysis.options import AnalysisOptions
    from PASTALib.analysis.pipeline import run_analysis

    out = tmp_path / "new"
    with pytest.raises(PastaCancelled, match="no output was written"):
        run_analysis(AnalysisOptions(image="sample-lesions", output=str(out)), CancelAt(stage))
    assert not out.exists()
    started = time.monotonic()
    with pytest.raises(PastaCancelled):  # and the next run is not blocked by a stale lock
        run_analysis(AnalysisOptions(image="sample-lesions", output=str(out)), CancelAt("reading"))
    assert time.monotonic() - started < 30


@posix_only
def test_ctrl_c_while_key_images_render_stops_at_once_and_writes_nothing(tmp_path, sample_paths):
    """A real SIGINT to a real `pasta report` process in its writing stage (64 findings to draw)."""
    image = read_volume(sample_paths["sample"])
    labels = np.zeros(image.array.shape, np.uint8)
    for k in range(10, 100, 24):
        for j in range(20, 90, 20):
            for i in range(20, 110, 24):
                labels[k:k + 3, j:j + 3, i:i + 3] = 1
    seg = write_volume(image.with_array(labels), tmp_path / "many.nii.gz")
    ct = write_volume(image, tmp_path / "ct.nii.gz")  # a file, not 'sample': no organ mask, no type rules
    out = tmp_path / "out"
    run = subprocess.Popen([sys.executable, "-m", "PASTALib", "report", str(ct), str(seg), "--lesion-type",
                            "bone_metastasis", "-o", str(out), "--progress", "json"],
                           cwd=REPO / "PASTA", stderr=subprocess.PIPE, text=True)
    stages = []
    for line in run.stderr:
        if line.startswith("{"):
            stages.append(json.loads(line)["stage"])
            if stages[-1] == "rendering":
                run.send_signal(signal.SIGINT)
                signalled = time.monotonic()
                break
    rest = run.stderr.read()
    run.wait(30)
    assert "rendering" in stages, stages
    assert run.returncode == 130, rest
    assert time.monotonic() - signalled < 10
    assert "no output was written" in rest
    assert not out.exists()
