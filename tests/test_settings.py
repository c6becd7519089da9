"""One declaration per setting: every DISTILLERY_ variable the code names is declared once,
read through its settings class, and listed in docs/settings.md."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from cli.commands.settings import GROUPS, PREFIX, settings_markdown
from storage.config import StorageSettings
from storage.registry.config import RegistrySettings

REPO = Path(__file__).resolve().parents[1]
NAME = re.compile(r"DISTILLERY_[A-Z0-9_]*[A-Z0-9]")
# Not settings: GGUF metadata handed to the converter's subprocess, and the test suite's own.
PLUMBING = {"DISTILLERY_PRE_FALLBACK", "DISTILLERY_LICENSE"}
TEST_ONLY = {
    "DISTILLERY_TEST_POSTGRES_URL",
    "DISTILLERY_FUZZ_EXAMPLES",
    "DISTILLERY_CHROMIUM",
    "DISTILLERY_SCREENSHOT_DIR",
}
PACKAGES = ("storage", "serving", "tasks", "flows", "cli", "demo", "simulator", "chat_runtime")


def _tracked() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.split()
    return [REPO / f for f in listed if (REPO / f).is_file()]


def _declared() -> dict[str, list[str]]:
    """Variable -> the settings groups that declare it."""
    found: dict[str, list[str]] = {}
    for title, cls in GROUPS.items():
        for name in cls.model_fields:
            found.setdefault(f"{PREFIX}{name.upper()}", []).append(title)
    return found


def test_every_variable_the_repository_names_is_declared_once() -> None:
    declared = _declared()
    twice = {name: groups for name, groups in declared.items() if len(groups) > 1}
    assert not twice, twice
    named = set()
    for path in _tracked():
        if path.suffix in (".py", ".md", ".yaml", ".toml", ".ipynb", "") or path.name == "run":
            named |= set(NAME.findall(path.read_text(errors="ignore")))
    unknown = sorted(named - set(declared) - PLUMBING - TEST_ONLY)
    assert not unknown, f"named but declared by no settings class: {unknown}"


def test_no_module_reads_a_setting_around_its_class() -> None:
    """os.environ reads of DISTILLERY_ variables happen in the settings classes only."""
    constants = set()
    sources = [p for p in _tracked() if p.suffix == ".py" and p.parts[len(REPO.parts)] in PACKAGES]
    for path in sources:
        constants |= set(re.findall(r"^(\w+) = \"DISTILLERY_", path.read_text(), re.MULTILINE))
    reads = re.compile(
        r"(environ\.get\(|environ\[|getenv\()\s*(\"DISTILLERY_|"
        + "|".join(constants or {"^$"})
        + ")"
    )
    wrong = [
        f"{path.relative_to(REPO)}:{n}"
        for path in sources
        if path.name != "convert_driver.py"  # PLUMBING: the converter subprocess's inputs
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if reads.search(line)
    ]
    assert not wrong, wrong


def test_docs_list_every_setting() -> None:
    text = (REPO / "docs" / "settings.md").read_text()
    block = text.split("do not edit by hand -->\n")[1].split("<!-- end of reference -->")[0]
    assert block == settings_markdown(), "regenerate docs/settings.md from `distillery settings`"


def test_every_setting_says_what_it_does() -> None:
    bare = [
        f"{PREFIX}{name.upper()}"
        for cls in GROUPS.values()
        for name, field in cls.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert not bare, f"give these a Field(description=...): {bare}"


def test_a_group_is_read_once_per_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "a"))
    first = StorageSettings.read()
    assert StorageSettings.read() is first
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "b"))
    assert StorageSettings.read().data_dir == tmp_path / "b"
    (tmp_path / ".env").write_text("DISTILLERY_REGISTRY=hub\n")
    assert RegistrySettings.read().registry == "hub"
    with pytest.raises(ValidationError):  # frozen: no stage can change what another reads
        first.data_dir = tmp_path  # type: ignore[misc]


def test_modules_read_groups_through_read() -> None:
    """Entry points call `<Group>.read()` and pass it on; nothing parses the environment anew."""
    fresh = re.compile(r"\b(Storage|Registry|Pipeline|Service)Settings\(\)")
    sources = [p for p in _tracked() if p.suffix == ".py" and p.parts[len(REPO.parts)] in PACKAGES]
    wrong = [
        f"{path.relative_to(REPO)}:{n}"
        for path in sources
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if fresh.search(line)
    ]
    assert not wrong, wrong
