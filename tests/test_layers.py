"""The architecture as imports: each package may import only the layers below it.

Read from the source (every import statement, function-level ones included), so a hidden
import cannot slip past the way it would past a check of `sys.modules` after one import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ML = {"torch", "transformers", "trl", "peft", "datasets", "accelerate", "bitsandbytes"}
# package -> top-level names it must never import
FORBIDDEN = {
    "storage": {"serving", "tasks", "flows", "cli", "demo", "simulator", "chat_runtime"} | ML,
    "serving": {"tasks", "flows", "cli", "demo", "simulator", "prefect"} | ML,
    "tasks": {"flows", "cli", "demo", "simulator", "serving"},
    "flows": {"cli", "demo", "simulator", "serving"},
    "simulator": {"flows", "cli", "demo"} | ML,  # tasks.sampledata: the phones' prompts
    "demo": {"cli"},
}


def _imports(path: Path) -> set[str]:
    """Top-level module names imported anywhere in a file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_the_layers_below(package: str) -> None:
    wrong = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in sorted((REPO / package).rglob("*.py"))
        for name in sorted(_imports(path) & FORBIDDEN[package])
    ]
    assert not wrong, "\n".join(wrong)
