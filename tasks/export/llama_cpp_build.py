"""Build llama-cpp-python from the pinned sdist for this CPU, cache the wheel, install it.

    python -m tasks.export.llama_cpp_build [--install] [--print-flags]

Why not `pip install llama-cpp-python`: there is no Linux wheel on PyPI, and the sdist's
default build uses -march=native, which on VMs that advertise AMX emits `tilezero` and dies
with "Illegal instruction" on the first evaluation. So the instruction sets are read from
/proc/cpuinfo and passed explicitly (GGML_NATIVE=OFF), with AMX always off. The wheel is
cached outside the repo under a key of version and flags, so a rebuild (~10 min on 2 cores)
happens only when either changes.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tasks.models.llama_cpp_source import LLAMA_CPP_PYTHON_VERSION, cache_dir, sdist_path

# /proc/cpuinfo flag -> ggml CMake option (x86 only; other CPUs build ggml's portable code).
X86_FEATURES = (
    ("avx", "GGML_AVX"),
    ("avx2", "GGML_AVX2"),
    ("fma", "GGML_FMA"),
    ("f16c", "GGML_F16C"),
    ("avx_vnni", "GGML_AVX_VNNI"),
    ("avx512f", "GGML_AVX512"),
    ("avx512_vbmi", "GGML_AVX512_VBMI"),
    ("avx512_vnni", "GGML_AVX512_VNNI"),
    ("avx512_bf16", "GGML_AVX512_BF16"),
)
# Advertised by some VMs whose hypervisor faults on the tile instructions: never enabled.
ALWAYS_OFF = ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The instruction-set flags of the first CPU listed in `cpuinfo` (empty if unreadable)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def cmake_args(flags: set[str]) -> tuple[str, str]:
    """(CMAKE_ARGS for this CPU, cache key naming the enabled features)."""
    args = ["-DGGML_NATIVE=OFF"]
    enabled = []
    is_x86 = platform.machine().lower() in ("x86_64", "amd64", "i686") or "sse2" in flags
    for flag, option in X86_FEATURES if is_x86 else ():
        on = flag in flags
        args.append(f"-D{option}={'ON' if on else 'OFF'}")
        if on:
            enabled.append(flag)
    args += [f"-D{option}=OFF" for option in ALWAYS_OFF]
    if "avx2" in enabled:
        enabled.remove("avx")  # implied: keeps the key short ("avx2-fma-f16c")
    key = "-".join(enabled) or f"portable-{platform.machine().lower()}"
    return " ".join(args), key


def wheel_dir(key: str) -> Path:
    """Where built wheels for this feature set are kept (the wheel name carries the version)."""
    return cache_dir() / "wheels" / key


def cached_wheel(key: str, version: str = LLAMA_CPP_PYTHON_VERSION) -> Path | None:
    """The cached wheel for `key` and `version`, if built before."""
    found = sorted(wheel_dir(key).glob(f"llama_cpp_python-{version}-*.whl"))
    return found[-1] if found else None


def build_wheel(version: str = LLAMA_CPP_PYTHON_VERSION) -> Path:
    """The wheel for this CPU: from the cache, or built from the pinned sdist and cached."""
    args, key = cmake_args(cpu_flags())
    wheel = cached_wheel(key, version)
    if wheel is not None:
        print(f"llama-cpp-python {version}: cached wheel {wheel}", flush=True)
        return wheel
    archive = sdist_path(version)
    print(f"llama-cpp-python {version}: building for {key} (CMAKE_ARGS={args}); ~10 min on 2 cores")
    env = {**os.environ, "CMAKE_ARGS": args, "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 1)}
    with tempfile.TemporaryDirectory(prefix="llama-wheel-") as tmp:
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", tmp, str(archive)]
        subprocess.run(cmd, env=env, check=True)
        [built] = Path(tmp).glob("llama_cpp_python-*.whl")
        wheel_dir(key).mkdir(parents=True, exist_ok=True)
        wheel = wheel_dir(key) / built.name
        shutil.move(str(built), wheel)  # moved last: a failed build never caches a wheel
    return wheel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install", action="store_true", help="pip install the wheel too")
    parser.add_argument("--print-flags", action="store_true", help="print CMAKE_ARGS and key")
    args = parser.parse_args(argv)
    if args.print_flags:
        cmake, key = cmake_args(cpu_flags())
        print(f"{key}\n{cmake}")
        return 0
    wheel = build_wheel()
    if args.install:
        cmd = [sys.executable, "-m", "pip", "install", "-q", str(wheel)]
        subprocess.run(cmd, check=True)
        print(f"installed {wheel.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
