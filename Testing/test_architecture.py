"""The layers hold: the core imports neither synthesis nor training, no import cycles, the Slicer side
calls core functions and never CLI modules, and a Slicer install ships no training code or monai."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from import_graph import REPO, cycles, module_graph, package_graph, project_modules

#: What the core must run without: the optional layers above it and Slicer's own packages.
BLOCKED_FOR_CORE = ("PASTASynthLib", "PASTATrainLib", "PASTASlicerLib", "PASTASynthSlicerLib", "monai",
                    "slicer", "vtk", "qt", "ctk")


def test_every_core_module_imports_with_synthesis_training_and_slicer_blocked():
    code = textwrap.dedent(f"""
        import importlib, importlib.abc, pkgutil, sys
        BLOCKED = {BLOCKED_FOR_CORE!r}

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"blocked: {{name}}", name=name)
                return None

        sys.meta_path.insert(0, Block())
        sys.path.insert(0, {str(REPO / "PASTA")!r})
        import PASTALib
        names = [m.name for m in pkgutil.walk_packages(PASTALib.__path__, "PASTALib.")
                 if not m.name.endswith("__main__")]
        for name in names:
            importlib.import_module(name)
        from PASTALib.cli.main import build_parser
        commands = set(build_parser()._subparsers._group_actions[0].choices)
        print(len(names), sorted(commands))
        assert {{"info", "segment", "analyze", "report"}} <= commands, commands
        assert not {{"synth", "synth-batch", "train"}} & commands, commands
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.split()[0]) > 50  # the walk really imported the whole core


def test_the_import_blocker_would_catch_a_core_module_that_needs_synthesis(tmp_path):
    """The check above can fail: a core-like package that imports PASTASynthLib is refused."""
    package = tmp_path / "CoreLike"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "leaky.py").write_text("import PASTASynthLib.catalog\n")
    code = textwrap.dedent(f"""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("PASTASynthLib",):
                    raise ModuleNotFoundError(name, name=name)
        sys.meta_path.insert(0, Block())
        sys.path.insert(0, {str(tmp_path)!r})
        import CoreLike.leaky
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "PASTASynthLib" in result.stderr


def test_no_import_cycle_among_modules_or_packages():
    modules = project_modules()
    graph = module_graph(modules)
    assert len(graph) > 100 and graph["PASTALib.cli.analyze"]  # the walk saw the project
    assert cycles(graph) == []
    assert cycles(package_graph(graph, modules)) == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_layers_point_one_way():
    """core <- synthesis <- training; Slicer code calls core functions, never a CLI module."""
    graph = module_graph()

    def imports(prefixes, targets):
        return sorted((m, t) for m, ts in graph.items() if m.split(".")[0] in prefixes
                      for t in ts if any(t == p or t.startswith(p + ".") for p in targets))

    assert imports(("PASTALib",), ("PASTASynthLib", "PASTATrainLib", "PASTASlicerLib", "PASTAWidgets",
                                   "PASTASynthSlicerLib", "PASTASynthWidgets")) == []
    assert imports(("PASTASynthLib",), ("PASTATrainLib", "PASTASlicerLib", "PASTASynthSlicerLib")) == []
    slicer_side = ("PASTA", "PASTASynth", "PASTASlicerLib", "PASTAWidgets", "PASTASynthSlicerLib",
                   "PASTASynthWidgets")
    assert imports(slicer_side, ("PASTALib.cli", "PASTASynthLib.cli_synth", "PASTATrainLib")) == []


def test_a_slicer_install_carries_no_training_code_or_monai():
    cmake = (REPO / "PASTA" / "CMakeLists.txt").read_text() + (REPO / "PASTASynth" / "CMakeLists.txt").read_text()
    assert "PASTATrainLib" not in cmake and "training" not in cmake.lower()
    requirements = (REPO / "PASTA" / "Resources" / "requirements.txt").read_text().splitlines()
    assert not [line for line in requirements if line.strip().lower().startswith("monai")]
    assert not (REPO / "PASTA" / "PASTALib" / "training").exists()
