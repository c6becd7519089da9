"""The one place that decides whether loading a model may download code at run time.

Why: transformers 5 depends on the `kernels` package and, by default, swaps layers of a model
it loads on CUDA for kernels it fetches from the Hugging Face Hub (`kernels-community/rotary`
and others). On a GPU server without internet every load then fails ("... is not available in
the local cache and Hugging Face Hub is in offline mode"), and on one with internet a load runs
code nobody pinned. So hub kernels are off unless `DISTILLERY_HUB_KERNELS=1` turns them on.

transformers reads its switch, the environment variable `USE_HUB_KERNELS`, each time
`from_pretrained` runs (`transformers.integrations.hub_kernels._kernels_enabled`), so
`allow_runtime_downloads()` sets it before every model load; call it first wherever a model
is loaded. The project never passes `trust_remote_code` or a hub `attn_implementation`, the
other ways a load can fetch code; model weights come from `materialize_preset`, which
downloads only presets whose source is the Hub. Packages that fetch kernels while they are
imported (bitsandbytes) are held offline by the same setting in `tasks/models/kernel_guard.py`.
"""

from __future__ import annotations

import os

from tasks.settings import PipelineSettings

HUB_KERNELS_SETTING = "DISTILLERY_HUB_KERNELS"
_TRUE = ("1", "true", "yes", "on", "y")


class HubKernelsOfflineError(RuntimeError):
    """Hub kernels were turned on while the Hugging Face Hub is offline."""


def hf_offline() -> bool:
    """True when HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set to a true value."""
    return any(
        os.environ.get(name, "").strip().lower() in _TRUE
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def allow_runtime_downloads() -> bool:
    """Apply the setting to transformers (USE_HUB_KERNELS); True when hub kernels are on.

    The setting wins over a USE_HUB_KERNELS already in the environment, so that one switch
    decides. Raises HubKernelsOfflineError when the setting is on and the Hub is offline.
    """
    if not PipelineSettings.read().hub_kernels:
        os.environ["USE_HUB_KERNELS"] = "NO"
        return False
    if hf_offline():
        raise HubKernelsOfflineError(
            f"{HUB_KERNELS_SETTING}=1 lets transformers fetch kernels from the Hugging Face Hub, "
            f"but HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE is set: unset {HUB_KERNELS_SETTING} "
            "to load without them"
        )
    os.environ["USE_HUB_KERNELS"] = "YES"
    return True
