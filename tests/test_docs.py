"""Documents stand alone: every file they name exists, and generated parts match."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Documents the code writes at run time (evaluation reports), not files of the repository.
GENERATED = {"report.md"}
MARKDOWN_NAME = re.compile(r"(?<![\w/.-])((?:\.\.?/)*\w[\w./-]*\.md)\b")
MARKDOWN_LINK = re.compile(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)")


def _is_ours(path: Path) -> bool:
    """A file of the project, not of a virtual environment, cache or build folder."""
    parts = path.relative_to(REPO).parts[:-1]
    return not any(part.startswith(".") or part in ("build", "dist") for part in parts)


def _tracked() -> list[Path]:
    # CI may test an export without .git: then walk the tree, skipping what git would ignore.
    listed = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.split()
    files = [REPO / f for f in listed] if listed else [f for f in REPO.rglob("*") if _is_ours(f)]
    return [
        f
        for f in files
        if f.suffix in (".md", ".py", ".toml", ".yaml", ".ipynb", "") and f.is_file()
    ]


def test_every_document_a_file_names_exists() -> None:
    missing = []
    for path in _tracked():
        text = path.read_text(errors="ignore")
        names = set(MARKDOWN_NAME.findall(text))
        if path.suffix == ".md":
            names |= set(MARKDOWN_LINK.findall(text))
        for name in names:
            if Path(name).name in GENERATED or name.startswith(("http", "/")):
                continue
            # Inside the repository only: a file beside the checkout is absent from a clone.
            inside = [(base / name).resolve() for base in (REPO, path.parent, REPO / "docs")]
            if not any(p.exists() and p.is_relative_to(REPO) for p in inside):
                missing.append(f"{path.relative_to(REPO)} names {name}")
    assert not missing, "\n".join(missing)


def test_the_configuration_reference_matches_the_classes() -> None:
    from tasks.config import CycleConfig, TeacherConfig, reference_markdown

    text = (REPO / "docs" / "configuration.md").read_text()
    block = text.split("do not edit by hand -->\n")[1].split("<!-- end of reference -->")[0]
    expected = (
        reference_markdown(CycleConfig)
        + "\n"
        + reference_markdown(TeacherConfig, title="teacher-finetune")
    )
    assert block == expected, "regenerate the reference: python -m tasks.config"
