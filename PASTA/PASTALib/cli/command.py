"""What a ``pasta`` subcommand is, and the options every subcommand shares.

Kept apart from :mod:`.main` so a command module (including those of the synthesis and training
packages) imports this small module, never the registry that lists it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

from PASTALib.progress import ProgressReporter

#: Help text of every positional image argument.
IMAGE_HELP = "a file, a DICOM series folder, or a bundled sample name ('sample')"


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, ProgressReporter], int]


def common_options() -> argparse.ArgumentParser:
    """Options every subcommand (and nested action) accepts: progress display and verbosity."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("output and logging")
    group.add_argument("--progress", choices=("bar", "json", "none"), default="bar",
                       help="progress display on stderr: a bar, one JSON object per line "
                       '({"stage", "fraction", "message"}) for programs, or none (default: bar)')
    verbosity = group.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    verbosity.add_argument("-v", "--verbose", action="store_true",
                           help="print debug messages and tracebacks")
    return common
