"""Render both module panels, built with Qt from their real ``.ui`` files, 500 px wide, into
``Resources/Screenshots/`` (issue 17: renders produced by a script in Testing/).

The PASTA panel shows the findings of a real ``pasta analyze`` run on the bundled sample (run here,
into a temporary folder), in the rows and order the Slicer module's findings table uses
(``results_import.table_row``). CTK/MRML widgets are drawn as the Qt widgets they are built on
(``ui_render``), so these are faithful in layout and size, not pixel copies of Slicer.

    .venv/bin/python Testing/render_panels.py            # writes Resources/Screenshots/*_module_panel.png
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ui_render  # noqa: E402
from module_files import ROOT  # noqa: E402

OUT = ROOT / "Resources" / "Screenshots"
WIDTH, HEIGHT = 500, 2400


def sample_report(folder: Path):
    from PASTALib.report.model import Report

    subprocess.run([sys.executable, "-m", "PASTALib", "analyze", "sample-lesions", "-o", str(folder), "--overwrite"],
                   check=True, capture_output=True, cwd=ROOT / "PASTA")
    return Report.from_json((folder / "report.json").read_text(encoding="utf-8"))


def fill_pasta(panel, report) -> None:
    from PASTASlicerLib.results_import import TABLE_COLUMNS, table_row
    from PySide6.QtGui import QStandardItem, QStandardItemModel

    model = QStandardItemModel(0, len(TABLE_COLUMNS), panel)
    model.setHorizontalHeaderLabels(list(TABLE_COLUMNS))
    for finding in report.findings:
        model.appendRow([QStandardItem("" if value is None else str(value))
                         for value in table_row(finding, f"{finding.id} {finding.lesion_type.name}")])
    table = ui_render.child(panel, "findingsTableView")
    table.setModel(model)
    table.resizeColumnsToContents()
    ui_render.child(panel, "inputVolumeSelector").addItem("sample-lesions CT")
    ui_render.child(panel, "modelComboBox").addItem("pasta-lesion-detector (bundled)")
    ui_render.child(panel, "resultSelector").addItem(f"PASTA {report.report_id[:8]}")
    finding_box = ui_render.child(panel, "findingComboBox")
    for finding in report.findings:
        finding_box.addItem(f"{finding.id}: {finding.lesion_type.name}")
    ui_render.child(panel, "statusLabel").setText(f"Done: {len(report.findings)} findings.")
    ui_render.child(panel, "impressionTextEdit").setPlainText(report.impression)


def render(module: str, fill=None) -> Path:
    ui_render.application()
    panel = ui_render.load_panel(module)
    if fill is not None:
        fill(panel)
    area = ui_render.in_module_panel(panel, WIDTH, HEIGHT)
    ui_render.collapse(panel, module)
    area.resize(WIDTH, min(HEIGHT, panel.sizeHint().height() + 4))
    ui_render.application().processEvents()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{module}_module_panel.png"
    area.grab().save(str(path))
    print(f"{module}: panel {panel.minimumSizeHint().width()} px minimum width, "
          f"{panel.sizeHint().height()} px tall with the .ui's collapsed sections closed -> {path}")
    return path


def main() -> None:
    sys.path[:0] = [str(ROOT / "PASTA"), str(ROOT / "PASTASynth")]
    with tempfile.TemporaryDirectory() as tmp:
        report = sample_report(Path(tmp) / "run")
    render("PASTA", lambda panel: fill_pasta(panel, report))
    render("PASTASynth")


if __name__ == "__main__":
    main()
