"""``python -m PASTALib`` runs the ``pasta`` command line (handy inside Slicer's PythonSlicer)."""

from PASTALib.cli.main import console_main

console_main()
