"""The features CSV: one row per finding or organ, metadata columns then ``f0 .. f{C-1}``.

Columns: ``id`` (``<case>/<finding or organ>``), ``case``, ``kind`` (finding/organ), ``name``
(lesion-type key or organ name), ``voxel_count``, ``model`` and ``model_sha256`` (the weights the
features come from, so a head can refuse features of another model), ``crop`` (the crop settings,
JSON), then the features. Plain text, readable by pandas, R or a spreadsheet; numpy only here.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from PASTALib.atomic import atomic_write
from PASTALib.errors import PastaInputError

META = ("id", "case", "kind", "name", "voxel_count", "model", "model_sha256", "crop")
_FEATURE = re.compile(r"^f(\d+)$")


@dataclass
class FeatureTable:
    ids: list[str]
    cases: list[str]
    kinds: list[str]
    names: list[str]
    voxel_counts: list[int]
    models: list[str]
    model_sha256: list[str]
    crops: list[str]
    features: np.ndarray  #: (N, C) float

    @property
    def dimension(self) -> int:
        return int(self.features.shape[1])

    def extend(self, other: "FeatureTable") -> "FeatureTable":
        if self.ids and other.ids and self.dimension != other.dimension:
            raise PastaInputError(f"Feature tables of dimension {self.dimension} and {other.dimension} cannot "
                                  "be combined: they come from different models.",
                                  "Extract every case's features with the same model.")
        features = other.features if not self.ids else np.concatenate([self.features, other.features])
        return FeatureTable(self.ids + other.ids, self.cases + other.cases, self.kinds + other.kinds,
                            self.names + other.names, self.voxel_counts + other.voxel_counts,
                            self.models + other.models, self.model_sha256 + other.model_sha256,
                            self.crops + other.crops, features)


def empty(dimension: int) -> FeatureTable:
    return FeatureTable([], [], [], [], [], [], [], [], np.zeros((0, dimension), np.float32))


def to_csv(table: FeatureTable) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*META, *(f"f{c}" for c in range(table.dimension))])
    for n in range(len(table.ids)):
        writer.writerow([table.ids[n], table.cases[n], table.kinds[n], table.names[n], table.voxel_counts[n],
                         table.models[n], table.model_sha256[n], table.crops[n],
                         *(repr(float(v)) for v in table.features[n])])
    return buffer.getvalue()


def write_csv(table: FeatureTable, path: Path, overwrite: bool = False) -> Path:
    return atomic_write(Path(path), to_csv(table), overwrite=overwrite)


def read_csv(path: Path) -> FeatureTable:
    """Read a features CSV, naming the row and column of anything missing or not a number."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PastaInputError(f"Cannot read the features file {path}: {exc.strerror or exc}.",
                              "Write it with `pasta features`.") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise PastaInputError(f"The features file {path} is empty.", "Write it with `pasta features`.")
    header = rows[0]
    missing = [c for c in META if c not in header]
    columns = sorted((int(m.group(1)), n) for n, c in enumerate(header) if (m := _FEATURE.match(c)))
    if missing or not columns:
        raise PastaInputError(f"{path} is not a PASTA features file: "
                              + (f"columns {', '.join(missing)} are missing" if missing else "no f0.. columns")
                              + ".", "Write it with `pasta features`.")
    if [c for c, _ in columns] != list(range(len(columns))):
        raise PastaInputError(f"{path}: the feature columns are not f0 .. f{len(columns) - 1} without gaps.")
    at = {c: header.index(c) for c in META}
    features = np.full((len(rows) - 1, len(columns)), np.nan)
    bad: list[str] = []
    for r, row in enumerate(rows[1:]):
        for c, (_, n) in enumerate(columns):
            try:
                features[r, c] = float(row[n])
            except (IndexError, ValueError):
                pass
        if not np.all(np.isfinite(features[r])):
            bad.append(row[at["id"]] if len(row) > at["id"] else f"line {r + 2}")
    if bad:
        raise PastaInputError(f"{path}: {len(bad)} row(s) have missing, NaN or infinite features: "
                              f"{first_few(bad)}.", "Extract their features again, or remove those rows.")
    body = rows[1:]

    def column(name: str) -> list[str]:
        return [row[at[name]] for row in body]

    ids = column("id")
    duplicates = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
    if duplicates:
        raise PastaInputError(f"{path}: ids occur more than once: {first_few(duplicates)}.",
                              "Give every case a unique case id.")
    return FeatureTable(ids, column("case"), column("kind"), column("name"),
                        [int(v) for v in column("voxel_count")], column("model"), column("model_sha256"),
                        column("crop"), features)


def read_many(paths: Sequence[Path]) -> FeatureTable:
    table = None
    for path in paths:
        part = read_csv(path)
        table = part if table is None else table.extend(part)
    assert table is not None
    return table


def crop_settings(table: FeatureTable) -> dict:
    """The crop settings shared by every row (a table mixing crops cannot train one head)."""
    distinct = sorted(set(table.crops))
    if len(distinct) != 1:
        raise PastaInputError(f"The features mix {len(distinct)} crop settings: {first_few(distinct)}.",
                              "Extract every case with the same crop options.")
    try:
        return json.loads(distinct[0])
    except ValueError:
        raise PastaInputError(f"The features' crop column is not JSON: {distinct[0][:80]!r}.") from None


def first_few(values: Sequence[str], n: int = 5) -> str:
    shown = ", ".join(str(v) for v in list(values)[:n])
    return shown + (f" (and {len(values) - n} more)" if len(values) > n else "")
