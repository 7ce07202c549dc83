"""The ``pasta`` command line: shared options, logging, progress, and exit codes.

Exit codes: 0 success, 2 bad input (a :class:`PastaInputError`, or bad arguments), 1 internal
error (a bug: please report it with the ``--verbose`` traceback), 130 cancelled.

Each subcommand lives in its own module, which lists it in its ``COMMANDS`` with a function that adds
its arguments and a function that runs it; :data:`COMMAND_MODULES` names those modules.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from PASTALib import __version__
from PASTALib.atomic import ENVIRONMENT_ERRNOS, output_error
from PASTALib.errors import (
    EXIT_BAD_INPUT,
    EXIT_CANCELLED,
    EXIT_INTERNAL_ERROR,
    EXIT_OK,
    PastaCancelled,
    PastaInputError,
)
from PASTALib.progress import CancelToken, make_reporter

from .command import Command, common_options

log = logging.getLogger("PASTALib")


#: Modules that define ``COMMANDS``, in the order ``pasta --help`` lists them. Found by name, so the
#: registry imports no command back and the core does not depend on the optional layers above it.
COMMAND_MODULES = (
    "PASTALib.cli.info", "PASTALib.cli.convert", "PASTALib.cli.sample", "PASTALib.cli.segment",
    "PASTALib.cli.models", "PASTALib.cli.report", "PASTALib.cli.analyze", "PASTALib.cli.features",
    "PASTALib.cli.fit_head", "PASTATrainLib.cli_train", "PASTASynthLib.cli_synth",
)
#: Packages that may be absent (a Slicer install ships no training code; a bare checkout may lack
#: synthesis): their commands are left out instead of breaking ``pasta``.
OPTIONAL_PACKAGES = ("PASTATrainLib", "PASTASynthLib")


def _commands() -> list[Command]:
    commands: list[Command] = []
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name in OPTIONAL_PACKAGES and name.split(".")[0] == exc.name:
                continue
            raise
        commands.extend(module.COMMANDS)
    return commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pasta",
        description="PASTA pan-tumour CT tools: inspect, convert and analyse CT volumes. "
        "Research use only; not a medical device.",
        epilog="Exit codes: 0 ok, 1 internal error, 2 bad input, 130 cancelled.",
    )
    parser.add_argument("--version", action="version", version=f"pasta {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = common_options()
    for command in _commands():
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help,
                                    parents=[common])
        command.add_arguments(sub)
        sub.set_defaults(_run=command.run)
    return parser


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.ERROR if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s" if args.verbose else "%(message)s"))
    root = logging.getLogger("PASTALib")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pasta`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args)
    cancel = CancelToken()
    cancel.install_signal_handlers()
    _end_with_parent(cancel)
    progress = make_reporter("none" if args.quiet and args.progress == "bar" else args.progress, cancel)
    try:
        code = args._run(args, progress)
    except PastaInputError as exc:
        return _bad_input(args, exc)
    except OSError as exc:
        if exc.errno not in ENVIRONMENT_ERRNOS:
            return _internal_error(args, exc)
        return _bad_input(args, output_error(Path(exc.filename or "."), exc))  # the user's to fix, not a bug
    except (PastaCancelled, KeyboardInterrupt) as exc:
        message = str(exc) if isinstance(exc, PastaCancelled) else PastaCancelled().args[0]
        _report_failure(args, "cancelled", message)
        log.error("%s", message)
        return EXIT_CANCELLED
    except Exception as exc:  # noqa: BLE001 - last line of defence, turned into exit code 1
        return _internal_error(args, exc)
    progress.finish()
    return code if code is not None else EXIT_OK


def _bad_input(args: argparse.Namespace, exc: PastaInputError) -> int:
    _report_failure(args, "error", exc.problem + (f" {exc.hint}" if exc.hint else ""))
    log.error("error: %s", exc.problem)
    if exc.hint:
        log.error("hint: %s", exc.hint)
    return EXIT_BAD_INPUT


def _internal_error(args: argparse.Namespace, exc: BaseException) -> int:
    _report_failure(args, "error", f"internal error: {exc}")
    if args.verbose:
        log.error("internal error", exc_info=exc)
    else:
        log.error("internal error: %s: %s (run with --verbose for the traceback and please "
                  "report it)", type(exc).__name__, exc)
    return EXIT_INTERNAL_ERROR


def _end_with_parent(cancel: CancelToken) -> None:
    """When the parent asked for it (Slicer's runner sets PASTA_EXIT_WITH_PARENT to its pid), its death
    cancels this run at the next progress report, and ends the process if that does not come soon."""
    import os

    from PASTALib.lifetime import PARENT_PID_ENV, watch_parent

    value = os.environ.get(PARENT_PID_ENV, "")
    if not value.isdigit():
        return

    def parent_gone() -> None:
        cancel.cancel()
        import time

        time.sleep(GRACE_AFTER_PARENT_S)
        os._exit(EXIT_CANCELLED)

    watch_parent(int(value), parent_gone)


#: Seconds a cancelled run whose parent died may take to stop cleanly before it is ended.
GRACE_AFTER_PARENT_S = 10.0


def _report_failure(args: argparse.Namespace, stage: str, message: str) -> None:
    """In JSON progress mode the parent process learns of failures on the same channel."""
    if args.progress == "json":
        sys.stderr.write(json.dumps({"stage": stage, "fraction": None, "message": message}) + "\n")
        sys.stderr.flush()


def console_main() -> None:
    sys.exit(main())


if __name__ == "__main__":
    console_main()
