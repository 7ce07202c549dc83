"""Download a registry model: the user's consent first, then a progress dialog with Cancel.

The checks (consent, SHA256 while streaming, atomic install, no partial file left) are in
:meth:`PASTASlicerLib.model_registry.ModelCache.download`; this file is only the dialogs.
"""

from __future__ import annotations

from typing import Optional

import slicer
from slicer.i18n import tr as _


def downloadWithConsent(entry):
    """Ask, download with progress, install; the installed model, or None if declined or cancelled."""
    from PASTASlicerLib.model_download import (
        DownloadCancelled, consent_text, download_offer, progress_reporter,
    )
    from PASTASlicerLib.model_registry import ModelCache

    cache = ModelCache()
    offer = download_offer(entry, cache)
    if not offer.allowed:
        slicer.util.warningDisplay(offer.reason)
        return None
    if not slicer.util.confirmYesNoDisplay(consent_text(entry, cache), windowTitle=_("Download a model")):
        return None
    dialog = slicer.util.createProgressDialog(
        parent=slicer.util.mainWindow(), value=0, maximum=100, windowTitle=_("Downloading {title}").format(
            title=entry.title), labelText=_("Connecting to {url}…").format(url=entry.url))
    dialog.setCancelButtonText(_("Cancel"))

    def report(done: int, total: Optional[int]) -> bool:
        if total:
            dialog.maximum = 100
            dialog.value = min(100, int(100 * done / total))
            dialog.labelText = _("{done:.1f} of {total:.1f} MB").format(done=done / 1e6, total=total / 1e6)
        else:
            dialog.maximum = 0  # busy indicator: the size is unknown
            dialog.labelText = _("{done:.1f} MB").format(done=done / 1e6)
        slicer.app.processEvents()
        return not dialog.wasCanceled

    try:
        with slicer.util.tryWithErrorDisplay(_("Downloading the model failed; nothing was installed.")):
            try:
                model = cache.download(entry, consent=True, progress=progress_reporter(report))
            except DownloadCancelled:
                slicer.util.showStatusMessage(_("Download cancelled; nothing was installed."), 5000)
                return None
            slicer.util.showStatusMessage(_("Installed model {id} (SHA256 verified)").format(id=model.id), 5000)
            return model
    finally:
        dialog.close()
