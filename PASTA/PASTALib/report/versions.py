"""Report schema versions and the readers that bring an older report.json up to today's model.

A report saved in a Slicer scene (``.mrb``) or a results folder outlives the PASTA that wrote it. Loading
goes through :func:`upgrade`: a report of a known older version is converted step by step, one of a
newer major version or of another schema is refused in plain words, never with a raw ``TypeError``.
To change the report: bump :data:`SCHEMA_VERSION`, add the step from the previous version to
:data:`UPGRADES`, regenerate the schema (``python -m PASTALib.report.schema --write``) and keep a report
of the previous version in ``Testing/Data`` (``report_schema_<version>.json``).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Tuple

from PASTALib.errors import PastaInputError

SCHEMA_NAME = "pasta-report"
FINDINGS_SCHEMA_NAME = "pasta-findings"
SCHEMA_VERSION = "1.1.0"


def _unsigned(data: dict) -> dict:
    """1.0.0 -> 1.1.0: reports gained a reader's signature; every earlier report is a draft."""
    return {**data, "signature": None}


#: from-version -> (to-version, step).
UPGRADES: Dict[str, Tuple[str, Callable[[dict], dict]]] = {"1.0.0": ("1.1.0", _unsigned)}


def _major(version: str) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return -1


def upgrade(data: Any, expected_schema: str = SCHEMA_NAME) -> dict:
    """``data`` as today's version of ``expected_schema``; PastaInputError when it cannot be."""
    if not isinstance(data, dict):
        raise PastaInputError("The report is not a JSON object.", "Open a report.json written by PASTA.")
    schema = data.get("schema")
    if schema != expected_schema:
        raise PastaInputError(f"This is not a PASTA report (schema {schema!r}, expected {expected_schema!r}).",
                              "Open a report.json written by PASTA.")
    version = str(data.get("schema_version"))
    if _major(version) > _major(SCHEMA_VERSION):
        raise PastaInputError(f"The report was written by a newer PASTA (report schema {version}; this PASTA "
                              f"reads up to {SCHEMA_VERSION}).", "Update PASTA to open it.")
    while version != SCHEMA_VERSION:
        if version not in UPGRADES:
            raise PastaInputError(f"Report schema version {version} is unknown to this PASTA (it reads "
                                  f"{', '.join([*UPGRADES, SCHEMA_VERSION])}).", "Update PASTA to open it.")
        version, step = UPGRADES[version]
        data = {**step(dict(data)), "schema_version": version}
    return data
