"""Loading a model downloads no code unless DISTILLERY_HUB_KERNELS turns hub kernels on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.models.load import load_model_and_tokenizer
from tasks.models.runtime_downloads import (
    HUB_KERNELS_SETTING,
    HubKernelsOfflineError,
    allow_runtime_downloads,
)

ROOT = Path(__file__).resolve().parents[3]

# A fresh interpreter with none of the switches set: what transformers itself thinks after
# the project's loader ran, and whether the loaded model was kernelized.
PROBE = """
import json
from tasks.models.load import load_model_and_tokenizer
from transformers.integrations.hub_kernels import _kernels_enabled
model, _ = load_model_and_tokenizer("tiny-llama-student", device="cpu")
print(json.dumps({"enabled": _kernels_enabled(), "model_uses_kernels": model.use_kernels}))
"""


def _clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    drop = ("USE_HUB_KERNELS", HUB_KERNELS_SETTING, "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PYTEST")}
    env.update(DISTILLERY_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", **extra)
    return env


def test_loader_turns_hub_kernels_off_in_a_clean_process(tmp_path: Path) -> None:
    # transformers' default is on (USE_HUB_KERNELS unset means YES): only the project's
    # decision turns it off, so this fails if allow_runtime_downloads() is not called.
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp_path,  # no .env from the checkout
        env={**_clean_env(tmp_path / "data"), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"enabled": False, "model_uses_kernels": False}


def test_setting_on_while_offline_fails_in_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(HUB_KERNELS_SETTING, "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubKernelsOfflineError) as err:
        load_model_and_tokenizer("tiny-llama-student", device="cpu")
    message = str(err.value)
    assert HUB_KERNELS_SETTING in message and "\n" not in message


def test_setting_decides_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USE_HUB_KERNELS", "YES")  # monkeypatch restores it afterwards
    monkeypatch.delenv(HUB_KERNELS_SETTING, raising=False)
    assert allow_runtime_downloads() is False and os.environ["USE_HUB_KERNELS"] == "NO"
    monkeypatch.setenv(HUB_KERNELS_SETTING, "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    assert allow_runtime_downloads() is True and os.environ["USE_HUB_KERNELS"] == "YES"


# A package that, like bitsandbytes on an AVX512-BF16 CPU, asks `kernels` for a Hub kernel
# while it is being imported, and keeps what happened.
FETCHING_PACKAGE = """
try:
    from kernels import get_kernel
    get_kernel("kernels-community/quantization-bitsandbytes", version=1)
    error = ""
except Exception as exc:
    error = str(exc)
"""
GUARDED_IMPORT = """
import json
from tasks.models import kernel_guard
kernel_guard.install(frozenset({"fetches_on_import"}))
import fetches_on_import
print(json.dumps({"error": fetches_on_import.error}))
"""


@pytest.mark.parametrize("hub_kernels", ["0", "1"])
def test_a_package_that_fetches_kernels_on_import_stays_offline_unless_allowed(
    tmp_path: Path, hub_kernels: str
) -> None:
    (tmp_path / "fetches_on_import").mkdir()
    (tmp_path / "fetches_on_import" / "__init__.py").write_text(FETCHING_PACKAGE)
    env = _clean_env(tmp_path / "data", **{HUB_KERNELS_SETTING: hub_kernels})
    del env["HF_HUB_OFFLINE"]  # the Hub is "reachable" as far as every library knows
    out = subprocess.run(
        [sys.executable, "-c", GUARDED_IMPORT],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": f"{tmp_path}:{ROOT}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    error = json.loads(out.stdout.strip().splitlines()[-1])["error"]
    if hub_kernels == "0":
        # The guard made `kernels` look in the local cache only: no request left the machine.
        assert "offline mode" in error, error
    else:
        # Allowed: `kernels` went to the Hub (unreachable here, or it would have loaded).
        assert "offline mode" not in error, error
