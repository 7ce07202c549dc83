"""``pasta sample``: the bundled sample data by name, path and checksum."""

from __future__ import annotations

import argparse
import json
import sys

from PASTALib.errors import PastaInputError
from PASTALib.io import sample_data
from PASTALib.progress import ProgressReporter

from .command import Command


def _add_sample_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the list as JSON on stdout")


def run_sample(args: argparse.Namespace, progress: ProgressReporter) -> int:
    rows = []
    for sample in sample_data.SAMPLES.values():
        progress.report("verifying", None, sample.name)
        rows.append({"name": sample.name, "path": str(sample.path), "sha256": sample.sha256,
                     "verified": sample.verify(), "description": sample.description})
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        for row in rows:
            status = "ok" if row["verified"] else "MISSING OR DAMAGED"
            sys.stdout.write(f"{row['name']:<15} {status:<6} {row['path']}\n{'':<22}{row['description']}\n")
    if not all(row["verified"] for row in rows):
        raise PastaInputError("Some bundled sample files are missing or damaged.",
                              "Reinstall PASTA or restore them from the repository.")
    return 0


COMMANDS = [
    Command("sample", "List the bundled sample data by name, path and checksum.",
            _add_sample_arguments, run_sample),
]
