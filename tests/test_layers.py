"""The layering rules of DESIGN.md: imports point down, the UI paints before torch loads."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sdtui"


def imported_modules(folder: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(PACKAGE))] = names
    return found


def test_core_imports_nothing_of_ours_above_it() -> None:
    for path, names in imported_modules("core").items():
        ours = {name for name in names if name.startswith("sdtui.")}
        assert all(name.startswith("sdtui.core") for name in ours), (path, ours)


@pytest.mark.parametrize("folder", ["core", "engine", "models", "runtime", "params", "services"])
def test_lower_layers_never_import_textual(folder: str) -> None:
    for path, names in imported_modules(folder).items():
        assert not any(name.split(".")[0] == "textual" for name in names), path


@pytest.mark.parametrize(
    "module", ["sdtui.app", "sdtui.screens.txt2img", "sdtui.screens.img2img", "sdtui.cli.start"]
)
def test_the_ui_imports_without_torch(module: str) -> None:
    code = f"import sys, {module}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
