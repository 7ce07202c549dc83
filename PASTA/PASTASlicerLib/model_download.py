"""What the model panel's Download button offers for a registry entry, and what the user agrees to.

PASTA downloads only what it can verify: an entry needs ``download: "auto"``, a URL and a SHA256.
For any other entry the button stays disabled and :func:`download_offer` says why and what to do
instead, so the user is never left with a greyed-out button and no explanation. The download
itself is :meth:`.model_registry.ModelCache.download` (consent-gated, hashed while streaming).

Standard library only (no Qt): the widget shows these texts; the tests read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from .model_registry import ModelCache, RegistryEntry, _is_sha256


class DownloadCancelled(Exception):
    """Raised from the progress callback when the user cancels; the partial file is removed."""


@dataclass(frozen=True)
class DownloadOffer:
    allowed: bool
    #: Why the button is disabled, or what pressing it will do.
    reason: str


def download_offer(entry: Optional[RegistryEntry], cache: ModelCache) -> DownloadOffer:
    """Whether ``entry`` can be downloaded now, and the sentence the GUI shows next to the button."""
    if entry is None:
        return DownloadOffer(False, "Choose a model from the list.")
    where = entry.page or entry.url
    if entry.download != "auto" or not entry.url:
        return DownloadOffer(False, f"{entry.title} is not offered for automatic download. Get it from "
                                    f"{where} and import the file or folder." if where else
                                    f"{entry.title} is not offered for automatic download.")
    if not _is_sha256(entry.sha256):
        return DownloadOffer(False, f"The registry gives no SHA256 for {entry.title}, so PASTA cannot verify a "
                                    f"download. Get it from {where} and import it.")
    if any(model.id == entry.id for model in cache.installed()):
        return DownloadOffer(False, f"{entry.title} is already installed as '{entry.id}'. Delete it first to "
                                    "download it again.")
    return DownloadOffer(True, f"Downloads {_size(entry.size_bytes)} from {entry.url} and checks its SHA256.")


def consent_text(entry: RegistryEntry, cache: ModelCache) -> str:
    """The question the user answers before anything is fetched."""
    return (f"Download {entry.title} (version {entry.version})?\n\n"
            f"From: {entry.url}\nSize: {_size(entry.size_bytes)}\nLicence: {entry.license}\n"
            f"SHA256: {entry.sha256}\nInstalled into: {cache.root / entry.id}\n\n"
            "The file is checked against this SHA256 before it is installed; a mismatch installs nothing.")


def progress_reporter(report: Callable[[int, Optional[int]], bool]) -> Callable[[int, Optional[int]], None]:
    """Wrap a GUI callback returning False on Cancel into the download's progress callback."""

    def progress(done: int, total: Optional[int]) -> None:
        if not report(done, total):
            raise DownloadCancelled("The download was cancelled.")

    return progress


def _size(size_bytes: Optional[int]) -> str:
    if not size_bytes:
        return "a file of unknown size"
    return f"{size_bytes / 1e6:.0f} MB" if size_bytes >= 1e6 else f"{size_bytes / 1e3:.0f} kB"
