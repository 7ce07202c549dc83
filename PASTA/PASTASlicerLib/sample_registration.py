"""The bundled sample scans in Slicer's Sample Data module ("Load sample" is one click): one entry per
bundled image, read from :data:`PASTALib.io.sample_data.SAMPLES` (the files, their SHA256), so the
module and ``pasta sample`` list the same data. Slicer-free: :func:`sample_data_sources` returns the
keyword arguments of ``SampleData.SampleDataLogic.registerCustomSampleDataSource``.
"""

from __future__ import annotations

from PASTALib.io.sample_data import SAMPLES, sample_mask_for

CATEGORY = "PASTA"
#: The bundled images shown in Sample Data, with the node name they load as.
SHOWN = {"sample": "PASTA native abdomen CT", "sample-lesions": "PASTA abdomen CT with 3 synthetic lesions"}


def sample_data_sources() -> list[dict]:
    """One source per shown image: the CT, and its TotalSegmentator organ mask loaded as a segmentation
    (what the PASTA module's organ selector takes)."""
    sources = []
    for name, node_name in SHOWN.items():
        files = [SAMPLES[name]]
        mask = sample_mask_for(name)
        if mask is not None:
            files.append(mask)
        sources.append({
            "category": CATEGORY,
            "sampleName": node_name,
            "uris": [f.path.as_uri() for f in files],
            "fileNames": [f.filename for f in files],
            "nodeNames": [node_name] + ([f"{node_name} organs"] if mask is not None else []),
            "checksums": [f"SHA256:{f.sha256}" for f in files],
            "loadFileType": ["VolumeFile"] + (["SegmentationFile"] if mask is not None else []),
        })
    return sources
