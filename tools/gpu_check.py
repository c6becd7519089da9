"""`make gpu-check`: everything that needs a GPU, run once, ending in one table.

1. the GPU tests (`pytest -m gpu`: bf16 and QLoRA training, loading offline);
2. `bench/distill.py --device cuda --preset llama-1b` (KD step cost, FLOP use, generation);
3. `bench/cycle.py --device cuda` on the shape presets of Mistral-7B → Llama-3.2-1B (one
   weekly cycle timed by stage, at the real sizes);
4. the memory plan of that cycle beside the card's real capacity.

Needs no network once the wheelhouse is installed (`make install WHEELS=DIR`): the models
are random-weight (the shape presets are built here) or cached, and hub kernels stay off.
On a machine without CUDA it stops at once and says so. Each step's output is kept in
`gpu-check/` (or --out).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def steps(quick: bool) -> list[tuple[str, list[str]]]:
    """(name, command) of each check; `quick` shrinks the benches to minutes."""
    py = sys.executable
    distill = [py, "bench/distill.py", "--device", "cuda", "--preset", "llama-1b"]
    # The seed pair's real shapes with random weights (tasks/models/shape.py): the same
    # compute as Mistral-7B → Llama-3.2-1B, and nothing to download.
    cycle = [py, "bench/cycle.py", "--device", "cuda", "--teacher", "shape-mistral-7b",
             "--student", "shape-llama-3.2-1b"]  # fmt: skip
    if quick:
        distill, cycle = [*distill, "--quick"], [*cycle, "--records", "500", "--steps", "20"]
    memory = [py, "-m", "cli", "memory", "--teacher", "mistral-7b-instruct-v0.3",
              "--student", "llama-3.2-1b-instruct"]  # fmt: skip
    return [
        ("gpu tests", [py, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider"]),
        ("bench/distill.py llama-1b", distill),
        ("bench/cycle.py", cycle),
        ("memory plan on this card", memory),
    ]


def cuda_name() -> str | None:
    """The first CUDA device's name, None without one."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller benches (minutes)")
    parser.add_argument("--out", type=Path, default=REPO / "gpu-check", help="[gpu-check/]")
    args = parser.parse_args(argv)
    device = cuda_name()
    if device is None:
        print("✗ no CUDA device here: make gpu-check runs on a GPU machine", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, command in steps(args.quick):
        log = args.out / f"{name.split()[0].replace('/', '-')}.log"
        print(f"▶ {name}: {' '.join(command[1:])}", flush=True)
        started = time.monotonic()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        log.write_text(done.stdout + done.stderr)
        seconds = time.monotonic() - started
        tail = (done.stdout.strip().splitlines() or [""])[-1][:90]
        rows.append((name, "✓" if done.returncode == 0 else f"✗ {done.returncode}", seconds, tail))
    print(f"\n{device}\n| check | result | s | last line (full output in {args.out}) |")
    print("|---|---|---|---|")
    for name, result, seconds, tail in rows:
        print(f"| {name} | {result} | {seconds:.0f} | {tail} |")
    return 0 if all(r[1] == "✓" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
