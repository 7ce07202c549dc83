"""User-facing errors.

Every problem a user can fix (a bad file, a wrong geometry, a non-CT image) is raised as
:class:`PastaInputError`, whose message says what is wrong *and* what to do. The CLI turns it into
exit code 2; anything else is a bug and exits with 1.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL_ERROR = 1
EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 130


class PastaError(Exception):
    """Base class for every error PASTA raises on purpose."""


class PastaInputError(PastaError):
    """The input cannot be used as given. ``problem`` says what is wrong, ``hint`` what to do."""

    def __init__(self, problem: str, hint: str = "") -> None:
        self.problem = problem
        self.hint = hint
        super().__init__(f"{problem} {hint}".strip())


class PastaCancelled(PastaError):
    """The user asked to stop; nothing was written."""

    def __init__(self, message: str = "Cancelled by the user; no output was written.") -> None:
        super().__init__(message)
