"""Images in and out: the one :class:`~.volume.Volume` type, file and DICOM I/O, world-space
resampling, orientation, input checks (:mod:`.input_checks`), ``pasta info`` and the bundled samples.

The lowest layer of the core: it imports nothing else from PASTALib but errors, progress and atomic writes.
"""
