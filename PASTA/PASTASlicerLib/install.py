"""Install what ``pasta analyze`` needs into Slicer's Python, after one confirmation.

* **torch** comes only through the PyTorch extension (``PyTorchUtils``), which picks the build
  that matches the GPU driver; never through pip here. When that extension is missing, installing
  it is offered first, before anything else is asked (as SlicerNNUnet does): Slicer must restart
  before the extension's module can be used.
* **Other packages** (``Resources/requirements.txt``) go through ``slicer.packaging.pip_ensure``
  on Slicer >= 5.12 and ``slicer.util.pip_install`` before that.
* **Nothing Slicer ships is replaced**: the install runs under a constraints file that pins every
  distribution installed in the running Slicer's Python (read from it, not a hand list: Slicer 5.10's
  pydicom 2.4 stays, and pip picks a highdicom that works with it) and torch to their versions.
* Nothing is imported to check what is installed (``importlib.metadata`` only), and nothing
  happens at import time: only when the user presses Apply.

The planning part is plain Python (tested); :func:`ensure_dependencies` is the Slicer-facing part.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

log = logging.getLogger(__name__)

#: Packages Slicer ships and that must never be replaced (plus torch, owned by PyTorchUtils).
PROTECTED = ("SimpleITK", "numpy", "requests", "torch")
TORCH_REQUIREMENT = ">=2.1"
#: The Slicer extension that installs torch, and the Python module it adds.
PYTORCH_EXTENSION = "PyTorch"
PYTORCH_MODULE = "PyTorchUtils"
PYTORCH_EXTENSION_QUESTION = (
    "PASTA runs on PyTorch, which Slicer installs through its PyTorch extension (it picks the build that "
    "matches your GPU). That extension is not installed.\n\nInstall the PyTorch extension now? Slicer must "
    "restart afterwards; then press Apply again.")


def installed_version(name: str) -> Optional[str]:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def read_requirements(path: str | Path) -> list[str]:
    """Requirement lines of a requirements file (comments and blank lines dropped)."""
    lines = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def module_available(name: str) -> bool:
    """Whether a Python module can be imported, without importing it."""
    return importlib.util.find_spec(name) is not None


def is_satisfied(requirement: str, version_of: Callable[[str], Optional[str]] = installed_version) -> bool:
    from packaging.requirements import Requirement

    parsed = Requirement(requirement)
    if parsed.marker is not None and not parsed.marker.evaluate():
        return True
    version = version_of(parsed.name)
    return version is not None and (not parsed.specifier or parsed.specifier.contains(version, prereleases=True))


@dataclass
class InstallPlan:
    torch: bool  #: torch must be installed through the PyTorch extension
    packages: list = field(default_factory=list)  #: requirement strings for pip
    #: torch is missing and so is the PyTorch extension that would install it: offered first, then a restart
    pytorch_extension_missing: bool = False

    @property
    def empty(self) -> bool:
        return not self.torch and not self.packages

    def confirmation_text(self) -> str:
        """The one question asked before anything is installed."""
        items = ([f"PyTorch {TORCH_REQUIREMENT} (through the PyTorch extension; a few GB)"] if self.torch else [])
        items += self.packages
        return ("PASTA needs these Python packages, which are not installed yet:\n\n  - "
                + "\n  - ".join(items)
                + "\n\nThey are downloaded from the Python Package Index and installed into Slicer's Python. "
                  "Every package already in Slicer's Python is left at its version. Install now?")


def install_plan(requirements: list[str],
                 version_of: Optional[Callable[[str], Optional[str]]] = None,
                 has_module: Optional[Callable[[str], bool]] = None) -> InstallPlan:
    """What is missing, without importing anything (by default: in this Python)."""
    version_of = version_of or installed_version
    has_module = has_module or module_available
    from packaging.requirements import Requirement

    names = {Requirement(r).name.lower() for r in requirements}
    protected = names & {p.lower() for p in PROTECTED}
    if protected:
        raise ValueError(f"requirements must not list Slicer's or PyTorchUtils' packages: {sorted(protected)}")
    torch_ok = is_satisfied(f"torch{TORCH_REQUIREMENT}", version_of)
    return InstallPlan(torch=not torch_ok, packages=[r for r in requirements if not is_satisfied(r, version_of)],
                       pytorch_extension_missing=not torch_ok and not has_module(PYTORCH_MODULE))


def installed_distributions() -> dict[str, str]:
    """Name -> version of every distribution installed in this Python (Slicer's own, when run in Slicer)."""
    found: dict[str, str] = {}
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"] if distribution.metadata else None
        if name and distribution.version and name.lower() not in {n.lower() for n in found}:
            found[name] = distribution.version
    return found


def protected_constraints(version_of: Callable[[str], Optional[str]] = installed_version,
                          installed: Optional[dict[str, str]] = None) -> str:
    """pip constraints pinning every installed distribution (and the always-protected packages) to its
    current version: installing PASTA's packages may add, never replace."""
    pins = dict(installed_distributions() if installed is None else installed)
    for name in PROTECTED:
        version = version_of(name)
        if version and name.lower() not in {n.lower() for n in pins}:
            pins[name] = version
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items(), key=lambda kv: kv[0].lower()))


def ensure_dependencies(requirements_path: str | Path) -> bool:
    """Check, ask once, install; True when everything is ready. Runs inside Slicer only."""
    import slicer

    plan = install_plan(read_requirements(requirements_path))
    if plan.empty:
        return True
    if plan.pytorch_extension_missing:
        offer_pytorch_extension(slicer.app.extensionsManagerModel(), slicer.util.confirmOkCancelDisplay,
                                slicer.util.errorDisplay, slicer.util.restart)
        return False
    if not slicer.util.confirmOkCancelDisplay(plan.confirmation_text(), windowTitle="PASTA: install packages"):
        slicer.util.showStatusMessage("PASTA: packages not installed; press Apply again to install them.", 5000)
        return False
    try:
        if plan.torch:
            _install_torch()
        if plan.packages:
            _install_packages(plan.packages)
    except Exception as error:  # noqa: BLE001 - shown to the user with a way forward
        log.exception("PASTA dependency installation failed")
        slicer.util.errorDisplay(
            f"Installing the packages failed: {error}\n\nCheck the internet connection (and proxy or VPN), "
            "then press Apply again. The Python console shows the details.",
            windowTitle="PASTA: installation failed")
        return False
    still = install_plan(read_requirements(requirements_path))
    if not still.empty:
        slicer.util.errorDisplay("Some packages are still missing after installation. Restart Slicer and press "
                                 "Apply again.", windowTitle="PASTA: restart needed")
        return False
    return True


def offer_pytorch_extension(extensions, ask: Callable[..., bool], show_error: Callable[..., None],
                            restart: Callable[[], None]) -> bool:
    """Ask to install the PyTorch extension from the extensions server, then offer the restart it needs.

    ``extensions`` is Slicer's ``extensionsManagerModel()``; True when the extension was installed (or was
    already, waiting for a restart). Nothing else is asked or installed before the restart."""
    if extensions.isExtensionInstalled(PYTORCH_EXTENSION):
        installed = True  # installed in this session: its module appears after a restart
    else:
        if not ask(PYTORCH_EXTENSION_QUESTION, windowTitle="PASTA: PyTorch extension"):
            return False
        installed = bool(extensions.installExtensionFromServer(PYTORCH_EXTENSION))
        if not installed:
            show_error("The PyTorch extension could not be installed from the extensions server. Install "
                       "'PyTorch' from the Extensions Manager, restart Slicer, and press Apply again.",
                       windowTitle="PASTA: PyTorch extension")
            return False
    if ask("The PyTorch extension is installed. Restart Slicer now to use it?", windowTitle="PASTA: restart"):
        restart()
    return installed


def _install_torch() -> None:
    import slicer

    try:
        import PyTorchUtils
    except ImportError:
        raise RuntimeError("the PyTorch extension is not installed. Install 'PyTorch' from the Extensions "
                           "Manager, restart Slicer, and press Apply again") from None
    logic = PyTorchUtils.PyTorchUtilsLogic()
    if not logic.torchInstalled():
        torch = logic.installTorch(askConfirmation=False, torchVersionRequirement=TORCH_REQUIREMENT)
        if torch is None:
            raise RuntimeError("PyTorch could not be installed")
    slicer.app.processEvents()


def _install_packages(packages: list[str]) -> None:
    import slicer

    constraints = Path(tempfile.mkdtemp(prefix="PASTA-pip-")) / "constraints.txt"
    constraints.write_text(protected_constraints(), encoding="utf-8")
    packaging = getattr(slicer, "packaging", None)
    if packaging is not None and hasattr(packaging, "pip_ensure"):  # Slicer >= 5.12
        from packaging.requirements import Requirement

        wanted = {"constraints": str(constraints), "prompt_install": False, "requester": "PASTA",
                  "skip_packages": sorted(set(PROTECTED) | set(installed_distributions()))}
        accepted = inspect.signature(packaging.pip_ensure).parameters
        packaging.pip_ensure([Requirement(p) for p in packages], **{k: v for k, v in wanted.items() if k in accepted})
    else:  # Slicer 5.8 / 5.10
        args = " ".join(f'"{p}"' for p in packages)
        slicer.util.pip_install(f'{args} -c "{constraints}"')
