"""Packages that fetch Hub kernels when imported are imported with the Hub offline.

bitsandbytes (0.48 and later) calls `kernels.get_kernel("kernels-community/...")` while it is
being imported, on any CPU with AVX512-BF16, GPU servers' CPUs included. peft imports
bitsandbytes whenever it is installed, so every training run would download code nobody
pinned, or, without internet, log a failed fetch. No setting of bitsandbytes or of the
`kernels` package turns that off, and the import happens wherever peft is first imported,
so the decision cannot wait for `allow_runtime_downloads()` before a model load.

This import hook is our own for that reason. `install()` runs when `tasks` is imported
(stdlib only, cheap). When such a package is imported later and `DISTILLERY_HUB_KERNELS` is
off, its module runs with `huggingface_hub.constants.HF_HUB_OFFLINE` set, which makes
`kernels` look only in the local cache. The package then falls back to its own code, as it
does on any machine where the kernel is missing.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

log = logging.getLogger(__name__)

# Packages known to fetch Hub kernels at import time.
FETCH_ON_IMPORT = frozenset({"bitsandbytes"})


def hub_kernels_on() -> bool:
    """DISTILLERY_HUB_KERNELS, read when a guarded package is imported."""
    from tasks.settings import PipelineSettings

    return PipelineSettings.read().hub_kernels


class _OfflineLoader(importlib.abc.Loader):
    """Runs the wrapped loader's module with the Hub offline and the package's logger quiet."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        if hub_kernels_on():
            self.inner.exec_module(module)
            return
        import huggingface_hub.constants as hub

        package = logging.getLogger(module.__name__)
        offline, level = hub.HF_HUB_OFFLINE, package.level
        hub.HF_HUB_OFFLINE = True
        package.setLevel(logging.ERROR)  # its "failed to load ... from kernels-community" line
        try:
            self.inner.exec_module(module)
        finally:
            hub.HF_HUB_OFFLINE = offline
            package.setLevel(level)
        log.info(
            "%s imported without fetching Hub kernels (DISTILLERY_HUB_KERNELS is off)",
            module.__name__,
        )


class KernelFetchGuard(importlib.abc.MetaPathFinder):
    """Finds `names` as usual, and has their top-level module run with the Hub offline."""

    def __init__(self, names: frozenset[str] = FETCH_ON_IMPORT) -> None:
        self.names = names

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        for finder in sys.meta_path:  # the finder that would have found it without us
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _OfflineLoader(spec.loader)
                return spec
        return None


def install(names: frozenset[str] = FETCH_ON_IMPORT) -> KernelFetchGuard:
    """Put the guard first on `sys.meta_path` (once); returns the guard in place."""
    for finder in sys.meta_path:
        if isinstance(finder, KernelFetchGuard) and finder.names == names:
            return finder
    guard = KernelFetchGuard(names)
    sys.meta_path.insert(0, guard)
    return guard
