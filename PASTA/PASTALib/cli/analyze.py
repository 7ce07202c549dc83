"""``pasta analyze``: segment with a PASTA model, then write the structured report, in one go."""

from __future__ import annotations

import argparse
from pathlib import Path

from PASTALib.analysis.options import AnalysisOptions, add_arguments
from PASTALib.progress import ProgressReporter

from .command import Command


def run_analyze(args: argparse.Namespace, progress: ProgressReporter) -> int:
    from PASTALib.analysis.pipeline import run_analysis
    from PASTALib.report.writer import summary_lines

    options = AnalysisOptions.from_args(args)
    analysis = run_analysis(options, progress)
    print("\n".join(summary_lines(analysis.report, Path(options.output).expanduser())))
    return 0


COMMANDS = [
    Command("analyze", "Segment lesions with a PASTA model and write the structured report (segment + report).",
            add_arguments, run_analyze),
]
