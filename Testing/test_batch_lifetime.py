"""`pasta synth-batch` workers live and die with their run: SIGTERM and kill -9 of the parent end them,
a cancelled run keeps only complete, listed cases and says how many, and a run that made nothing
does not exit 0."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from PASTALib.cli import main as cli
from PASTALib.errors import PastaInputError
from PASTALib.result_folder import FolderLock

from conftest import REPO
from synth_hosts import write_host_folders

linux_only = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc for child processes")


@pytest.fixture(scope="module")
def hosts(tmp_path_factory) -> Path:
    return write_host_folders(tmp_path_factory.mktemp("batch") / "hosts")


def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.update(int(v) for v in (task / "children").read_text().split())
        except OSError:
            pass
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has stopped; only its exit status is left


def _start_batch(hosts: Path, out: Path) -> tuple[subprocess.Popen, set[int]]:
    """A 2-worker batch big enough to still be running; returns it once both workers exist."""
    batch = subprocess.Popen([sys.executable, "-m", "PASTALib", "synth-batch", "--hosts", str(hosts),
                              "--per-type", "30", "--types", "liver_tumor", "-o", str(out), "--workers", "2",
                              "--progress", "none"], cwd=REPO / "PASTA", stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        workers = _children(batch.pid)
        if len(workers) >= 2 and (out / "manifest.jsonl").exists() and (out / "manifest.jsonl").read_text():
            return batch, workers
        time.sleep(0.2)
    batch.kill()
    pytest.fail("synth-batch did not start two workers and finish a case within 60 s")


def _wait_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_running(p) for p in pids):
        time.sleep(0.2)
    return {p for p in pids if _running(p)}


def _listed_cases(out: Path) -> list[str]:
    return [json.loads(line)["case"] for line in (out / "manifest.jsonl").read_text().splitlines() if line.strip()]


def _case_folders(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.glob("*/*/*") if p.is_dir() and not p.name.startswith("."))


@linux_only
def test_kill_9_of_the_parent_ends_its_workers_and_the_next_run_cleans_up(hosts, tmp_path):
    out = tmp_path / "dataset"
    batch, workers = _start_batch(hosts, out)
    batch.send_signal(signal.SIGKILL)
    batch.wait(10)
    batch.stdout.close()
    batch.stderr.close()
    assert _wait_gone(workers, 15) == set(), "workers kept running after their parent was killed"
    # The next run takes over: half-written case folders are removed, the lock is free, it resumes.
    rerun = subprocess.run([sys.executable, "-m", "PASTALib", "synth-batch", "--hosts", str(hosts), "--per-type",
                            "1", "--types", "liver_tumor", "-o", str(out), "--progress", "none"],
                           cwd=REPO / "PASTA", capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert not list(out.glob("*/*/.*.partial"))


@linux_only
def test_sigterm_cancels_the_batch_keeping_only_complete_listed_cases(hosts, tmp_path):
    out = tmp_path / "dataset"
    batch, workers = _start_batch(hosts, out)
    batch.send_signal(signal.SIGTERM)
    started = time.monotonic()
    _, err = batch.communicate(timeout=30)
    assert batch.returncode == 130, err
    assert time.monotonic() - started < 15  # the workers' current cases are not waited for
    assert _wait_gone(workers, 10) == set()
    listed = _listed_cases(out)
    assert f"{len(listed)} new case(s) complete and listed" in err
    assert "no output was written" not in err
    assert _case_folders(out) == sorted(listed)  # every folder is listed, no half-written one remains
    assert not list(out.glob("*/*/.*.partial"))


def test_a_second_batch_into_a_claimed_dataset_is_refused(hosts, tmp_path, capsys):
    out = tmp_path / "dataset"
    out.mkdir()
    with FolderLock(out):
        code = cli.main(["synth-batch", "--hosts", str(hosts), "--per-type", "1", "--types", "liver_cyst",
                         "-o", str(out), "--progress", "none"])
    assert code == 2 and "Another PASTA run" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == []


def test_a_batch_that_made_nothing_does_not_exit_0(hosts, tmp_path, capsys, monkeypatch):
    def fails(job, dataset_dir):
        raise PastaInputError(f"simulated failure of {job.case}")

    monkeypatch.setattr("PASTASynthLib.batch.make_case", fails)
    code = cli.main(["synth-batch", "--hosts", str(hosts), "--per-type", "1", "--types", "liver_cyst",
                     "-o", str(tmp_path / "d"), "--progress", "none"])
    err = capsys.readouterr().err
    assert code == 2 and "No case was made: 2 of 2 failed (first: simulated failure" in err
    assert json.loads((tmp_path / "d" / "dataset.json").read_text())["made"] == 0


@linux_only
def test_a_watched_child_ends_when_its_parent_is_killed(tmp_path):
    """PASTALib.lifetime: what ends synth-batch's workers and Slicer's analysis child after kill -9."""
    child_code = ("import os, sys, time\nfrom PASTALib.lifetime import watch_parent\n"
                  f"watch_parent(os.getppid(), lambda: (open({str(tmp_path / 'ended')!r}, 'w').close(), os._exit(3)))\n"
                  "print(os.getpid(), flush=True)\ntime.sleep(60)")
    parent_code = ("import subprocess, sys, time\n"
                   f"child = subprocess.Popen([sys.executable, '-c', {child_code!r}], stdout=subprocess.PIPE, text=True)\n"
                   "print(child.stdout.readline().strip(), flush=True)\ntime.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True,
                              cwd=REPO / "PASTA")
    try:
        child = int(parent.stdout.readline())
        assert _running(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert _wait_gone({child}, 10) == set()
        assert (tmp_path / "ended").exists()  # it ended through the watchdog, not by chance
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


def test_the_cli_watches_the_parent_the_environment_names(monkeypatch):
    from PASTALib import lifetime
    from PASTALib.cli import main as cli
    from PASTALib.progress import CancelToken

    watched = []
    monkeypatch.setattr(lifetime, "watch_parent", lambda pid, on_death: watched.append(pid))
    monkeypatch.setenv(lifetime.PARENT_PID_ENV, "4242")
    cli._end_with_parent(CancelToken())
    monkeypatch.delenv(lifetime.PARENT_PID_ENV)
    cli._end_with_parent(CancelToken())
    assert watched == [4242]
