"""One analysis run: its options (:mod:`.options`, one table from the Slicer panel to the command
line and back) and the segment-then-report pipeline that ``pasta analyze`` and the Slicer module
run (:mod:`.pipeline`)."""
