"""Dependency planning and device advice: what the module asks before a run, without Slicer or torch.

The Slicer-facing calls (PyTorchUtils, slicer.packaging.pip_ensure / slicer.util.pip_install, the
dialogs) cannot run here; the decisions they act on are tested.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, pypi_reachable

REQUIREMENTS = REPO / "PASTA" / "Resources" / "requirements.txt"


def versions(**installed):
    table = {name.lower(): version for name, version in installed.items()}
    return lambda name: table.get(name.lower().replace("-", "_")) or table.get(name.lower())


def test_requirements_cover_the_core_but_never_slicers_own_packages():
    from PASTASlicerLib.install import PROTECTED, read_requirements

    requirements = read_requirements(REQUIREMENTS)
    names = {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in requirements}
    assert not names & {p.lower() for p in PROTECTED}
    pyproject = (REPO / "pyproject.toml").read_text()
    core = re.search(r"^dependencies = \[(.*?)\]", pyproject, re.S | re.M).group(1)
    core_names = {re.split(r"[<>=!~ ]", d.strip().strip('",'), maxsplit=1)[0].lower()
                  for d in core.splitlines() if d.strip().strip(",")}
    slicer_ships = {"numpy", "scipy", "simpleitk", "torch"}
    assert core_names - slicer_ships == names, "requirements.txt must list the core's other dependencies"


def test_plan_lists_only_what_is_missing():
    from PASTASlicerLib.install import install_plan

    requirements = ["monai>=1.3", "safetensors>=0.4", "Pillow>=9"]
    plan = install_plan(requirements, versions(torch="2.5.1", monai="1.4.0", safetensors="0.3.0", pillow="10.0"))
    assert not plan.torch and plan.packages == ["safetensors>=0.4"]
    plan = install_plan(requirements, versions(monai="1.4.0", safetensors="0.4.5", pillow="10.0"))
    assert plan.torch and plan.packages == []
    assert "PyTorch >=2.1 (through the PyTorch extension" in plan.confirmation_text()
    assert install_plan(requirements, versions(torch="1.13.0", monai="1.4", safetensors="0.5", pillow="11")).torch
    assert install_plan(requirements, versions(torch="2.6", monai="1.4", safetensors="0.5", pillow="11")).empty


class ExtensionsServer:
    """What the test needs of Slicer's extensionsManagerModel(): installed names and server installs."""

    def __init__(self, installed=(), server_works=True):
        self.installed = set(installed)
        self.server_works = server_works
        self.requests: list[str] = []

    def isExtensionInstalled(self, name):
        return name in self.installed

    def installExtensionFromServer(self, name):
        self.requests.append(name)
        if self.server_works:
            self.installed.add(name)
        return self.server_works


class Dialogs:
    """Answers questions in order and records what was asked, shown and restarted."""

    def __init__(self, *answers):
        self.answers, self.asked, self.errors, self.restarts = list(answers), [], [], 0

    def ask(self, text, windowTitle=""):
        self.asked.append(text)
        return self.answers.pop(0)

    def error(self, text, windowTitle=""):
        self.errors.append(text)

    def restart(self):
        self.restarts += 1


def test_the_pytorch_extension_is_needed_only_when_torch_is_missing_and_so_is_the_extension():
    from PASTASlicerLib.install import install_plan

    requirements = ["safetensors>=0.4"]
    no_module = lambda name: False  # noqa: E731
    has_utils = lambda name: name == "PyTorchUtils"  # noqa: E731
    assert install_plan(requirements, versions(safetensors="0.5"), no_module).pytorch_extension_missing
    assert not install_plan(requirements, versions(safetensors="0.5"), has_utils).pytorch_extension_missing
    assert not install_plan(requirements, versions(torch="2.6", safetensors="0.5"), no_module).pytorch_extension_missing


def test_installing_the_pytorch_extension_is_offered_then_a_restart():
    from PASTASlicerLib.install import PYTORCH_EXTENSION, offer_pytorch_extension

    server, dialogs = ExtensionsServer(), Dialogs(True, True)
    assert offer_pytorch_extension(server, dialogs.ask, dialogs.error, dialogs.restart)
    assert server.requests == [PYTORCH_EXTENSION] == ["PyTorch"]
    assert "PyTorch extension" in dialogs.asked[0] and "Restart" in dialogs.asked[1] and dialogs.restarts == 1

    server, dialogs = ExtensionsServer(), Dialogs(False)  # declined: nothing installed, nothing more asked
    assert not offer_pytorch_extension(server, dialogs.ask, dialogs.error, dialogs.restart)
    assert server.requests == [] and len(dialogs.asked) == 1 and dialogs.restarts == 0

    server, dialogs = ExtensionsServer(server_works=False), Dialogs(True)  # the server fails: said, no restart
    assert not offer_pytorch_extension(server, dialogs.ask, dialogs.error, dialogs.restart)
    assert "Extensions Manager" in dialogs.errors[0] and dialogs.restarts == 0

    server, dialogs = ExtensionsServer(installed={"PyTorch"}), Dialogs(False)  # installed, not yet restarted
    assert offer_pytorch_extension(server, dialogs.ask, dialogs.error, dialogs.restart)
    assert server.requests == [] and "Restart" in dialogs.asked[0] and dialogs.restarts == 0


def test_the_extension_is_offered_before_any_package_question(monkeypatch, tmp_path):
    """Without the PyTorch extension the first and only question is the extension's: no pip dialog, no pip."""
    import types

    import PASTASlicerLib.install as install

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("safetensors>=0.4\n")
    dialogs, server = Dialogs(False), ExtensionsServer()
    fake_util = types.SimpleNamespace(confirmOkCancelDisplay=dialogs.ask, errorDisplay=dialogs.error,
                                      restart=dialogs.restart,
                                      pip_install=lambda *a: pytest.fail("pip must not run before the restart"))
    monkeypatch.setitem(sys.modules, "slicer", types.SimpleNamespace(
        util=fake_util, app=types.SimpleNamespace(extensionsManagerModel=lambda: server)))
    monkeypatch.setattr(install, "installed_version", versions())
    monkeypatch.setattr(install, "module_available", lambda name: False)
    assert install.ensure_dependencies(requirements) is False
    assert len(dialogs.asked) == 1 and dialogs.asked[0] == install.PYTORCH_EXTENSION_QUESTION


def test_plan_refuses_to_touch_protected_packages():
    from PASTASlicerLib.install import install_plan

    with pytest.raises(ValueError, match="numpy"):
        install_plan(["numpy>=2"], versions())


def test_constraints_pin_slicers_packages_to_their_installed_versions():
    from PASTASlicerLib.install import protected_constraints

    text = protected_constraints(versions(numpy="1.26.4", simpleitk="2.4.0", requests="2.32.3"), installed={})
    assert text.splitlines() == ["numpy==1.26.4", "requests==2.32.3", "SimpleITK==2.4.0"]
    # Slicer 5.10's own package set (a part): pydicom 2.4.4 must stay, so pip has to pick a highdicom for it
    slicer_510 = {"pydicom": "2.4.4", "numpy": "1.26.4", "SimpleITK": "2.4.1", "requests": "2.32.3",
                  "scipy": "1.14.1"}
    pins = protected_constraints(versions(), installed=slicer_510).splitlines()
    assert "pydicom==2.4.4" in pins and "scipy==1.14.1" in pins and len(pins) == 5


def test_constraints_are_read_from_the_running_python_not_a_hand_list():
    from PASTASlicerLib.install import installed_distributions, protected_constraints

    installed = installed_distributions()
    assert {"numpy", "simpleitk", "pydicom"} <= {n.lower() for n in installed}  # what this Python has
    pins = set(protected_constraints().splitlines())
    assert all(f"{name}=={version}" in pins for name, version in installed.items())


def test_device_advice():
    from PASTASlicerLib.devices import LOW_MEMORY_OPTIONS, device_advice, time_estimate

    assert device_advice("cpu", None) is None and device_advice("auto", None) is None
    assert device_advice("auto", 24.0) is None
    assert device_advice("cuda", None).suggest_cpu
    low = device_advice("auto", 4.0)
    assert not low.suggest_cpu and low.low_memory == LOW_MEMORY_OPTIONS and "4.0 GB" in low.message
    assert "CPU" in time_estimate("auto", None) and "GPU" in time_estimate("cuda", 24.0)


def test_the_time_estimate_is_this_models_work_at_this_computers_measured_speed(tmp_path, monkeypatch):
    """Was: "5 to 50 minutes" on any CPU for any model (the default detector takes seconds)."""
    from PASTALib.inference.work import TimingLog, detector_key, detector_reference_seconds, network_key
    from PASTASlicerLib.devices import time_estimate

    monkeypatch.setenv("PASTA_HOME", str(tmp_path))
    detector = REPO / "PASTA" / "PASTALib" / "models" / "pasta-default"
    sample = ((112, 101, 122), (3.0, 3.0, 3.0))
    first = time_estimate("auto", None, detector, "pasta-model", *sample)
    assert "measured by the first run" in first and "1 M voxels" in first and "minutes" not in first
    TimingLog().record(detector_key("cpu"), 1.0)  # this computer runs at the reference speed
    small = round(detector_reference_seconds(112 * 101 * 122 / 1e6))
    assert time_estimate("auto", None, detector, "pasta-model", *sample).startswith(f"On the CPU: about {small} s")
    big = time_estimate("cpu", None, detector, "pasta-model", (400, 512, 512), (0.7, 0.7, 0.8))
    assert f"about {round(detector_reference_seconds(400 * 512 * 512 / 1e6))} s" in big and "105 M voxels" in big
    assert 5 <= round(detector_reference_seconds(105)) <= 15  # seconds for a full CT, not minutes
    tiny = REPO / "Testing" / "Data" / "tiny_pasta_organs"  # a network: tiles x mirrorings x folds
    counted = time_estimate("cpu", None, tiny, "pasta-model", *sample)
    assert "tiles x 1 mirroring(s) x 1 fold(s)" in counted and "measured by the first run" in counted
    TimingLog().record(network_key("cpu", [8, 16, 32, 32], [64, 64, 64]), 0.5)
    assert "about" in time_estimate("cpu", None, tiny, "pasta-model", *sample)


def test_low_memory_options_reach_pasta_analyze():
    """The low-memory advice is AnalysisOptions values; they become --no-tta --batch-size 1 on the command line
    and `pasta analyze`'s parser reads them back."""
    import dataclasses

    from PASTALib.analysis.options import AnalysisOptions
    from PASTALib.cli.main import build_parser
    from PASTASlicerLib.devices import LOW_MEMORY_OPTIONS

    options = dataclasses.replace(AnalysisOptions(image="ct.nrrd", output="out"), **LOW_MEMORY_OPTIONS)
    argv = options.to_argv()
    assert "--no-tta" in argv and argv[argv.index("--batch-size") + 1] == "1"
    args = build_parser().parse_args(argv)
    assert args.tta is False and args.batch_size == 1


def test_gpu_memory_reads_nvidia_smi(tmp_path, monkeypatch):
    from PASTASlicerLib import devices

    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 6144\necho 24576\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert devices.gpu_memory_gb() == pytest.approx(24.0)
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert devices.gpu_memory_gb() is None


SLICER_PACKAGES = json.loads((REPO / "Testing" / "Data" / "slicer_python_packages.json").read_text())["releases"]


def resolve(requirements: list[str], python: str, constraints: Path | None, folder: Path) -> dict[str, str]:
    """What pip would install for ``python`` (a throwaway target, wheels only, nothing installed):
    normalised name -> version."""
    folder.mkdir(parents=True, exist_ok=True)
    report = folder / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--report", str(report), "--python-version", python, "--only-binary=:all:",
               "--platform", "manylinux2014_x86_64", "--implementation", "cp", "--target", str(folder / "target"),
               *(["-c", str(constraints)] if constraints else []), *requirements]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"pip could not resolve {requirements} for Python {python}:\n{result.stderr}"
    return {canonical(item["metadata"]["name"]): item["metadata"]["version"]
            for item in json.loads(report.read_text())["install"]}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.slow
@pytest.mark.skipif(not pypi_reachable(), reason="resolving needs the Python Package Index")
@pytest.mark.parametrize("release", sorted(SLICER_PACKAGES))
def test_the_install_plan_resolves_against_each_slicer_releases_own_packages_and_replaces_none(release, tmp_path):
    """Issue 17: the first Apply on Slicer 5.10 would have replaced Slicer's pydicom 2.4.4 with 3.0.2. Resolve
    what the plan installs, for that release's Python, under the constraints the install writes from the
    release's own package set: it must resolve, and every package Slicer ships must stay at its version."""
    from PASTASlicerLib.install import install_plan, protected_constraints, read_requirements

    shipped = SLICER_PACKAGES[release]["packages"]
    python = SLICER_PACKAGES[release]["python"]
    by_name = {canonical(name): version for name, version in shipped.items()}
    plan = install_plan(read_requirements(REQUIREMENTS), lambda name: by_name.get(canonical(name)),
                        lambda name: False)
    assert plan.torch and plan.pytorch_extension_missing  # a fresh Slicer has neither
    assert plan.packages, "a fresh Slicer lacks at least safetensors"
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(protected_constraints(lambda name: None, installed=shipped))
    chosen = resolve(plan.packages, python, constraints, tmp_path)
    replaced = {name: (by_name[name], version) for name, version in chosen.items()
                if name in by_name and version != by_name[name]}
    assert not replaced, f"Slicer {release}'s packages would change: {replaced}"
    assert {canonical(re.split(r"[<>=!~ ]", p, maxsplit=1)[0]) for p in plan.packages} <= set(chosen)
    if by_name.get("pydicom", "").startswith("2."):  # without the pins, pip would replace Slicer's pydicom
        unpinned = resolve(plan.packages, python, None, tmp_path / "unpinned")
        assert unpinned.get("pydicom", by_name["pydicom"]) != by_name["pydicom"]
