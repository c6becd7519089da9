"""One declaration per setting: every DISTILLERY_ variable the code names is declared once,
read through its settings class, and listed in docs/settings.md."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from cli.commands.settings import GROUPS, PREFIX, settings_markdown
from storage.config import DistillerySettings, InvalidSettings, Settings, StorageSettings
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
# The misspelling the docs and a test show being pointed out.
MISSPELLED = {"DISTILLERY_PRECISON"}
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
    unknown = sorted(named - set(declared) - PLUMBING - TEST_ONLY - MISSPELLED)
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


def test_the_cli_groups_are_every_settings_class() -> None:
    """`Settings.read(*GROUPS.values())`, what the CLI reads, covers every variable."""
    import serving.settings  # noqa: F401 - each package declares its group on import
    import tasks.settings  # noqa: F401

    def subclasses(cls: type) -> set[type]:
        return {c for sub in cls.__subclasses__() for c in {sub} | subclasses(sub)}

    ours = {c for c in subclasses(DistillerySettings) if c.__module__.split(".")[0] in PACKAGES}
    assert ours == set(GROUPS.values())


def test_every_bad_value_is_named_in_one_error_before_anything_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISTILLERY_PRECISION", "bf17")
    monkeypatch.setenv("DISTILLERY_RETENTION_DAYS", "0")
    monkeypatch.setenv("DISTILLERY_ARTIFACT_STORE_OPTIONS", "{not json")
    with pytest.raises(InvalidSettings) as caught:
        Settings.read(*GROUPS.values())
    message = str(caught.value)
    assert (
        "DISTILLERY_PRECISION='bf17': Input should be 'auto', 'bf16', 'fp16' or 'fp32'" in message
    )
    assert "artifact_store_options" in message and "JSON" in message
    monkeypatch.delenv("DISTILLERY_ARTIFACT_STORE_OPTIONS")
    message = str(pytest.raises(InvalidSettings, Settings.read, *GROUPS.values()).value)
    assert "DISTILLERY_RETENTION_DAYS='0': Input should be greater than or equal to 1" in message
    assert message.splitlines()[-1].strip().startswith("`distillery settings` lists")


def test_settings_passed_in_are_what_every_read_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "env"))
    given = Settings({StorageSettings: StorageSettings(data_dir=tmp_path / "given")})
    with given.active() as settings:
        assert settings is given and StorageSettings.read() is given.get(StorageSettings)
        assert Settings.current(StorageSettings) is given
        # A group the run was not given still comes from the environment.
        assert RegistrySettings.read().registry == "local"
        assert Settings.current(StorageSettings, RegistrySettings) is not given
        monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "changed"))
        assert StorageSettings.read().data_dir == tmp_path / "given"  # frozen for the run
    assert StorageSettings.read().data_dir == tmp_path / "changed"
    replaced = given.replace(RegistrySettings(registry="hub"))
    assert replaced.get(RegistrySettings).registry == "hub"
    assert replaced.get(StorageSettings) is given.get(StorageSettings)
    with pytest.raises(TypeError, match="StorageSettings holds a RegistrySettings"):
        Settings({StorageSettings: RegistrySettings()})


def test_a_bad_value_stops_a_command_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISTILLERY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DISTILLERY_DECODING", "greedy")
    assert main(["prepare"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("✗ DISTILLERY_DECODING='greedy': Input should be 'continuous' or")
    assert "Traceback" not in err
    assert not (tmp_path / "data").exists()  # nothing was created: the command never started
    # `distillery settings` still lists the others and names the bad one.
    assert main(["settings"]) == 2
    out, err = capsys.readouterr()
    assert "DISTILLERY_DATA_DIR=" in out and "DISTILLERY_DECODING" not in out
    assert "✗ pipeline: DISTILLERY_DECODING='greedy'" in err


def test_a_misspelled_variable_is_pointed_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(next(iter(MISSPELLED)), "bf16")
    monkeypatch.setenv("DISTILLERY_TEST_POSTGRES_URL", "postgresql://x")  # not a near-miss
    assert main(["settings"]) == 0
    err = capsys.readouterr().err
    assert "⚠ DISTILLERY_PRECISON is not a setting; did you mean DISTILLERY_PRECISION?" in err
    assert "TEST_POSTGRES" not in err
