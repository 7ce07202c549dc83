"""Packaging and wiring checks for the Slicer modules, runnable without Slicer.

* Every file under a module folder is listed in its CMakeLists.txt (an unlisted file is not packaged, so
  the module works from source but breaks once installed), and every listed file exists.
* Each .ui file is valid XML whose ``SlicerParameterName`` properties match the module's
  ``@parameterNodeWrapper`` fields exactly, and whose node selectors get the scene.
* Module files compile and import nothing heavy at file scope.
* The extension CMakeLists builds both modules and depends on PyTorch.
"""

from __future__ import annotations

import ast
import py_compile
import re
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from module_files import ROOT, parameter_bindings, parameter_fields, parse_module  # noqa: F401
MODULES = ("PASTA", "PASTASynth")

#: Top-level packages a module file may import at file scope (besides the standard library).
ALLOWED_TOP_LEVEL = {"slicer", "vtk", "qt", "ctk", "typing", "__future__"}
#: Core modules a module file may read at file scope: tables that import the standard library only
#: (test_light_core_modules_import_the_standard_library_only proves it).
LIGHT_CORE_MODULES = {"PASTALib.lesions.lesion_types", "PASTALib.lesions", "PASTALib.detection.sensitivity",
                      "PASTALib.detection"}

IGNORED_DIRS = {"__pycache__", ".pytest_cache"}
IGNORED_SUFFIXES = (".pyc", ".pyo")


# ----------------------------------------------------------------------------------- helpers
def cmake_without_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def cmake_set_list(cmake_text: str, variable: str) -> list[str]:
    """Entries of ``set(<variable> ...)``, with ``${MODULE_NAME}`` expanded."""
    text = cmake_without_comments(cmake_text)
    match = re.search(r"\bset\(\s*" + re.escape(variable) + r"\b(.*?)\)", text, re.S)
    assert match, f"no set({variable} ...) in CMakeLists.txt"
    name_match = re.search(r"\bset\(\s*MODULE_NAME\s+(\S+?)\s*\)", text)
    module_name = name_match.group(1) if name_match else None
    entries = []
    for entry in match.group(1).split():
        if "${MODULE_NAME}" in entry:
            assert module_name, "${MODULE_NAME} used but MODULE_NAME is not set"
            entry = entry.replace("${MODULE_NAME}", module_name)
        entries.append(entry.strip('"'))
    return entries


def files_in_module(folder: Path) -> tuple[set[str], set[str]]:
    """(.py files, other shipped files) under a module folder, as paths relative to it."""
    scripts, resources = set(), set()
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if not path.is_file() or IGNORED_DIRS.intersection(rel.parts):
            continue
        if rel.parts[0] == "Testing" or rel.as_posix() == "CMakeLists.txt" or path.suffix in IGNORED_SUFFIXES:
            continue
        (scripts if path.suffix == ".py" else resources).add(rel.as_posix())
    return scripts, resources


def listing_problems(kind: str, listed: list[str], present: set[str]) -> list[str]:
    problems = []
    duplicates = sorted({entry for entry in listed if listed.count(entry) > 1})
    if duplicates:
        problems.append(f"{kind} lists these more than once: {', '.join(duplicates)}")
    missing = sorted(present - set(listed))
    if missing:
        problems.append(f"{kind} does not list (so they would not be packaged): {', '.join(missing)}")
    extra = sorted(set(listed) - present)
    if extra:
        problems.append(f"{kind} lists files that do not exist: {', '.join(extra)}")
    return problems


def import_time_imports(tree: ast.Module):
    """Import statements executed when the module file is imported (not inside a function)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def stdlib_names() -> set[str]:
    names = set(getattr(sys, "stdlib_module_names", ()))
    # Python < 3.10 has no stdlib_module_names; these are the ones a module file plausibly uses.
    names |= {"abc", "collections", "contextlib", "dataclasses", "enum", "functools", "importlib",
              "json", "logging", "math", "os", "pathlib", "re", "shutil", "subprocess", "sys",
              "tempfile", "textwrap", "threading", "time", "typing", "unittest", "warnings", "weakref"}
    return names


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


# ----------------------------------------------------------------------------------- (a) listing
@pytest.mark.parametrize("module", MODULES)
def test_cmake_lists_every_module_file(module):
    folder = ROOT / module
    cmake = (folder / "CMakeLists.txt").read_text(encoding="utf-8")
    scripts, resources = files_in_module(folder)
    listed_scripts = cmake_set_list(cmake, "MODULE_PYTHON_SCRIPTS")
    listed_resources = cmake_set_list(cmake, "MODULE_PYTHON_RESOURCES")
    problems = (listing_problems(f"{module}/CMakeLists.txt MODULE_PYTHON_SCRIPTS", listed_scripts, scripts)
                + listing_problems(f"{module}/CMakeLists.txt MODULE_PYTHON_RESOURCES", listed_resources, resources))
    assert not problems, "\n".join(problems)
    assert all(entry.endswith(".py") for entry in listed_scripts)
    assert f"{module}.py" in listed_scripts
    assert f"Resources/Icons/{module}.png" in listed_resources
    assert f"Resources/UI/{module}.ui" in listed_resources


@pytest.mark.parametrize("module", MODULES)
def test_cmake_builds_and_tests_the_module(module):
    text = cmake_without_comments((ROOT / module / "CMakeLists.txt").read_text(encoding="utf-8"))
    assert re.search(rf"\bset\(\s*MODULE_NAME\s+{module}\s*\)", text)
    build = re.search(r"slicerMacroBuildScriptedModule\((.*?)\)", text, re.S)
    assert build, "slicerMacroBuildScriptedModule(...) missing"
    args = build.group(1).split()
    for expected in ("NAME", "${MODULE_NAME}", "SCRIPTS", "${MODULE_PYTHON_SCRIPTS}",
                     "RESOURCES", "${MODULE_PYTHON_RESOURCES}", "WITH_GENERIC_TESTS"):
        assert expected in args, f"slicerMacroBuildScriptedModule lacks {expected}"
    assert re.search(r"if\(\s*BUILD_TESTING\s*\)\s*slicer_add_python_unittest\(\s*SCRIPT\s+\$\{MODULE_NAME\}\.py\s*\)",
                     text), "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py) missing under BUILD_TESTING"


def test_listing_check_catches_unlisted_and_missing_files(tmp_path):
    (tmp_path / "Lib").mkdir()
    (tmp_path / "M.py").write_text("")
    (tmp_path / "Lib" / "new.py").write_text("")
    (tmp_path / "Lib" / "__pycache__").mkdir()
    (tmp_path / "Lib" / "__pycache__" / "new.cpython-311.pyc").write_bytes(b"")
    scripts, resources = files_in_module(tmp_path)
    assert scripts == {"M.py", "Lib/new.py"} and resources == set()
    listed = cmake_set_list("set(MODULE_NAME M)\nset(MODULE_PYTHON_SCRIPTS\n  ${MODULE_NAME}.py\n  Lib/gone.py\n  )",
                            "MODULE_PYTHON_SCRIPTS")
    problems = "\n".join(listing_problems("SCRIPTS", listed, scripts))
    assert "does not list (so they would not be packaged): Lib/new.py" in problems
    assert "lists files that do not exist: Lib/gone.py" in problems


# ----------------------------------------------------------------------------------- (b) .ui
@pytest.mark.parametrize("module", MODULES)
def test_ui_binds_exactly_the_parameter_node_fields(module):
    ui_path = ROOT / module / "Resources" / "UI" / f"{module}.ui"
    root = ET.parse(ui_path).getroot()  # raises on malformed XML
    top = root.find("widget")
    assert top is not None and top.get("class") == "qMRMLWidget", "root widget must be a qMRMLWidget"
    assert top.get("name") == module
    fields = parameter_fields(parse_module(module))
    bindings = parameter_bindings(root)
    unknown = sorted(set(bindings) - set(fields))
    unbound = sorted(set(fields) - set(bindings))
    assert not unknown, f"{ui_path.name} binds names that are not parameter fields: {', '.join(unknown)}"
    assert not unbound, f"{ui_path.name} binds no widget to parameter fields: {', '.join(unbound)}"

    for name, widget in bindings.items():
        if widget.get("class") != "qMRMLNodeComboBox":
            continue
        node_types = [s.text for p in widget.findall("property") if p.get("name") == "nodeTypes"
                      for s in p.iter("string")]
        assert fields[name] in node_types, (
            f"selector {widget.get('name')} for {name}: {fields[name]} not in nodeTypes {node_types}")


@pytest.mark.parametrize("module", MODULES)
def test_ui_node_selectors_receive_the_scene(module):
    root = ET.parse(ROOT / module / "Resources" / "UI" / f"{module}.ui").getroot()
    selectors = {w.get("name") for w in root.iter("widget") if w.get("class") == "qMRMLNodeComboBox"}
    assert selectors, "no qMRMLNodeComboBox in the .ui"
    connected = {c.findtext("receiver") for c in root.iter("connection")
                 if c.findtext("sender") == module
                 and c.findtext("signal") == "mrmlSceneChanged(vtkMRMLScene*)"
                 and c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"}
    assert not selectors - connected, f"selectors without the scene connection: {sorted(selectors - connected)}"


@pytest.mark.parametrize("module", MODULES)
def test_widget_uses_only_widgets_defined_in_the_ui(module):
    root = ET.parse(ROOT / module / "Resources" / "UI" / f"{module}.ui").getroot()
    names = {w.get("name") for w in root.iter("widget")}
    used = {node.attr for node in ast.walk(parse_module(module))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
            and node.value.attr == "ui" and isinstance(node.value.value, ast.Name) and node.value.value.id == "self"}
    assert used, "the widget uses no self.ui.<name>"
    assert not used - names, f"self.ui names missing from the .ui: {sorted(used - names)}"


# ----------------------------------------------------------------------------------- (c) module files
@pytest.mark.parametrize("module", MODULES)
def test_module_file_compiles(module, tmp_path):
    py_compile.compile(str(ROOT / module / f"{module}.py"), cfile=str(tmp_path / f"{module}.pyc"), doraise=True)


def heavy_file_scope_imports(tree: ast.AST) -> list[str]:
    """Imports that run when a module file is loaded and are neither stdlib, Slicer's, nor a light core table."""
    allowed = ALLOWED_TOP_LEVEL | stdlib_names()
    offending = []
    for node in import_time_imports(tree):
        if isinstance(node, ast.ImportFrom):
            names = ["." * node.level + (node.module or "")] if node.level else [node.module or ""]
            if node.module in LIGHT_CORE_MODULES:
                names = [f"{node.module}.{alias.name}" for alias in node.names
                         if f"{node.module}.{alias.name}" not in LIGHT_CORE_MODULES]
        else:
            names = [alias.name for alias in node.names if alias.name not in LIGHT_CORE_MODULES]
        offending += [f"line {node.lineno}: {name}" for name in names if name.split(".")[0] not in allowed]
    return offending


@pytest.mark.parametrize("module", MODULES)
def test_module_file_has_no_heavy_import_at_file_scope(module):
    offending = heavy_file_scope_imports(parse_module(module))
    assert not offending, f"{module}.py imports at file scope: {'; '.join(offending)}"


def test_light_core_modules_import_the_standard_library_only():
    """What a module file may import at file scope must not pull numpy, SimpleITK or torch into Slicer's start."""
    modules = sorted(m for m in LIGHT_CORE_MODULES if m.count(".") > 1)
    code = (f"import sys\nsys.path.insert(0, {str(ROOT / 'PASTA')!r})\n"
            + "".join(f"import {m}\n" for m in modules)
            + "print(sorted(m for m in ('numpy', 'SimpleITK', 'torch', 'scipy') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_import_check_lets_only_light_core_modules_through():
    tree = ast.parse("from PASTALib.lesions import lesion_types\nfrom PASTALib.io import volume\n"
                     "import PASTALib.lesions.lesion_types\nfrom PASTALib.lesions import anatomy\n")
    assert sorted(heavy_file_scope_imports(tree)) == ["line 2: PASTALib.io", "line 4: PASTALib.lesions.anatomy"]


def test_import_check_catches_heavy_imports():
    tree = ast.parse("import os\nif True:\n    import torch\nclass A:\n    import numpy\n"
                     "def f():\n    import scipy\n")
    found = {alias.name for node in import_time_imports(tree) for alias in node.names}
    assert found == {"os", "torch", "numpy"}


# ----------------------------------------------------------------------------------- (d) extension
def test_extension_cmake_builds_both_modules_and_needs_pytorch():
    text = cmake_without_comments((ROOT / "CMakeLists.txt").read_text(encoding="utf-8"))
    assert re.search(r"\bproject\(\s*PASTA\s*\)", text)
    for module in MODULES:
        assert re.search(rf"\badd_subdirectory\(\s*{module}\s*\)", text), f"add_subdirectory({module}) missing"
    depends = re.search(r"\bset\(\s*EXTENSION_DEPENDS\s+(.*?)\)", text, re.S)
    assert depends and "PyTorch" in depends.group(1).replace('"', "").split(), "EXTENSION_DEPENDS must name PyTorch"
    for variable in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS",
                     "EXTENSION_DESCRIPTION", "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"):
        assert re.search(rf"\bset\(\s*{variable}\s+\S", text), f"{variable} not set"
    order = [text.find(s) for s in ("find_package(Slicer REQUIRED)", "include(${Slicer_USE_FILE})",
                                     "add_subdirectory(", "include(${Slicer_EXTENSION_GENERATE_CONFIG})",
                                     "include(${Slicer_EXTENSION_CPACK})")]
    assert -1 not in order and order == sorted(order), "extension CMakeLists is not in template order"


def test_icons_are_128_pixel_pngs_and_the_icon_url_points_into_the_repo():
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    url = re.search(r'EXTENSION_ICONURL\s+"([^"]+)"', text).group(1)
    match = re.match(r"https://raw\.githubusercontent\.com/[^/]+/[^/]+/[^/]+/(.+)$", url)
    assert match, f"EXTENSION_ICONURL is not a raw GitHub URL: {url}"
    icons = [ROOT / match.group(1)] + [ROOT / m / "Resources" / "Icons" / f"{m}.png" for m in MODULES]
    for icon in icons:
        assert icon.is_file(), f"missing icon {icon.relative_to(ROOT)}"
        assert png_size(icon) == (128, 128), f"{icon.relative_to(ROOT)} is not 128x128"


def test_extensions_index_entry_matches_the_extension_and_promises_no_screenshot():
    """The ExtensionsIndex description file says what the top-level CMakeLists says (category, PyTorch,
    the repository); no screenshot URL is published until real Slicer screenshots exist."""
    import json

    entry = json.loads((ROOT / "Resources" / "ExtensionsIndex" / "PASTA.json").read_text(encoding="utf-8"))
    text = cmake_without_comments((ROOT / "CMakeLists.txt").read_text(encoding="utf-8"))
    homepage = re.search(r'set\(\s*EXTENSION_HOMEPAGE\s+"([^"]+)"', text).group(1)
    category = re.search(r'set\(\s*EXTENSION_CATEGORY\s+"([^"]+)"', text).group(1)
    assert entry == {"build_dependencies": ["PyTorch"], "build_subdirectory": ".", "category": category,
                     "scm_revision": "main", "scm_url": homepage}
    assert re.search(r'set\(\s*EXTENSION_SCREENSHOTURLS\s+""\s*\)', text)


def test_sample_data_entries_are_the_bundled_files_with_their_checksums():
    """"Load sample" in Slicer's Sample Data module: the bundled CTs and their organ masks, verified."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    from PASTALib.hashing import sha256_file
    from PASTASlicerLib.sample_registration import sample_data_sources

    sources = sample_data_sources()
    assert [s["sampleName"] for s in sources] == ["PASTA native abdomen CT",
                                                  "PASTA abdomen CT with 3 synthetic lesions"]
    for source in sources:
        assert source["loadFileType"] == ["VolumeFile", "SegmentationFile"]  # the CT, then its organs
        lengths = {len(source[k]) for k in ("uris", "fileNames", "nodeNames", "checksums", "loadFileType")}
        assert lengths == {2}
        for uri, checksum in zip(source["uris"], source["checksums"]):
            path = Path(url2pathname(urlparse(uri).path))
            assert path.is_file() and checksum == f"SHA256:{sha256_file(path)}"
