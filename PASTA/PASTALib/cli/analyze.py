"""``pasta analyze``: segment with a PASTA model, then write the structured report, in one go."""

from __future__ import annotations

import argparse
from pathlib import Path

from PASTALib.analysis.options import AnalysisOptions, add_arguments
from PASTALib.errors import PastaInputError
from PASTALib.progress import ProgressReporter

from .command import Command


def run_analyze(args: argparse.Namespace, progress: ProgressReporter) -> int:
    from PASTALib.analysis.batch import batch_cases, run_batch
    from PASTALib.analysis.pipeline import run_analysis
    from PASTALib.report.writer import summary_lines

    options = AnalysisOptions.from_args(args)
    cases = batch_cases(options.image)
    if cases is not None:
        outcomes = run_batch(options, cases, progress)
        for o in outcomes:
            print(f"{o.case:<30} " + (f"FAILED: {o.error}" if o.error else f"{o.findings} finding(s)"
                                      + (" (already done)" if o.status == "already done" else "")))
        failed = [o.case for o in outcomes if o.error is not None]
        if failed:
            raise PastaInputError(f"{len(failed)} of {len(outcomes)} case(s) failed: {', '.join(failed)}.",
                                  "Their reasons are above; the other cases were written.")
        return 0
    analysis = run_analysis(options, progress)
    print("\n".join(summary_lines(analysis.report, Path(options.output).expanduser())))
    return 0


COMMANDS = [
    Command("analyze", "Segment lesions with a PASTA model and write the structured report (segment + report).",
            add_arguments, run_analyze),
]
