"""Random-weight models of the seed models' real architectures: config, weights, fixtures.

Two sizes from the same builders:

- tiny students (hidden 256, 2 layers) with the features llama.cpp must get right for the
  real model — Phi-3-mini's fused qkv/gate_up projections, Llama-3.2-1B's llama3 rope
  scaling, GQA and tied embeddings, TinyLlama's GQA — for the export tests;
- every seed model, teachers included, at its real shape (tasks/models/memory_plan.py:
  HUB_SHAPES), at full depth or fewer layers: the `shape-*` presets (tasks/models/shape.py).

Which models those are lives in tasks/models/seed_models.py; their real tokenizers are
rebuilt offline by tasks/models/seed_tokenizer.py, so the exporter sees what it will see on
a real model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tasks.models.llama_cpp_source import cache_dir
from tasks.models.memory_plan import ModelShape
from tasks.models.seed_models import FIXTURE_VERSION, SEED_STUDENTS, SeedModel
from tasks.models.seed_tokenizer import build_seed_tokenizer


def seed_config(model: SeedModel, tokenizer: Any, shape: ModelShape | None = None) -> Any:
    """The transformers config: at `shape` (the real widths, any depth), else tiny."""
    from transformers import AutoConfig

    if shape is None:  # the tiny fixture: real vocabulary and features, 256 wide
        sizes = {
            "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
            "num_attention_heads": model.num_heads, "num_key_value_heads": model.num_kv_heads,
        }  # fmt: skip
        shape = model.shape
    else:
        sizes = {
            "hidden_size": shape.hidden, "intermediate_size": shape.intermediate,
            "num_hidden_layers": shape.layers, "num_attention_heads": shape.heads,
            "num_key_value_heads": shape.kv_heads,
        }  # fmt: skip
    return AutoConfig.for_model(
        model.model_type,
        vocab_size=shape.vocab,
        tie_word_embeddings=shape.tied_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=0.02,
        **sizes,
        **model.extra_config,
    )


def seed_weights(config: Any, seed: int, dtype: Any = None) -> Any:
    """A random model of `config`, the same for the same seed and dtype (fp32 by default;
    a 16-bit `dtype` is drawn in it directly, with no fp32 copy at any time)."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    dtype = dtype or torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=dtype).eval()
    # Embeddings and output 5x wider than the rest: clearer top-1 margins (fewer random
    # near-ties), while the 0.02 blocks keep attention from the chaotic regime where any
    # rounding flips a choice.
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(5.0)
        if not config.tie_word_embeddings:
            model.get_output_embeddings().weight.mul_(5.0)
    return model


def write_model_card(model: SeedModel, out_dir: Path, what: str) -> None:
    """README.md whose front matter carries license/organisation, as on the Hub."""
    (out_dir / "README.md").write_text(
        f"---\nlicense: {model.license}\nbase_model: {model.real_model}\n---\n"
        f"{what} for {model.real_model} (random weights, tests only).\n"
    )


def build_seed_student(name: str, out_dir: Path, *, seed: int = 0) -> Path:
    """Write tiny `name` (a key of SEED_STUDENTS) with its real tokenizer into `out_dir`."""
    from transformers import AutoTokenizer

    student = SEED_STUDENTS[name]
    build_seed_tokenizer(student, out_dir)
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    seed_weights(seed_config(student, tokenizer), seed).save_pretrained(out_dir)
    write_model_card(student, out_dir, "Tiny random stand-in")
    (out_dir / "distillery_fixture.json").write_text(
        json.dumps({"name": name, "real_model": student.real_model, "vocab": student.vocab})
    )
    return out_dir


def seed_student_dir(name: str) -> Path:
    """The cached tiny student `name`, built once per machine outside the repository."""
    if name not in SEED_STUDENTS:
        raise KeyError(f"unknown seed student {name!r}; choose one of {sorted(SEED_STUDENTS)}")
    final = cache_dir() / "fixtures" / FIXTURE_VERSION / name
    return build_once(final, "distillery_fixture.json", lambda tmp: build_seed_student(name, tmp))


def build_once(final: Path, marker: str, build: Callable[[Path], object]) -> Path:
    """`final`, built by `build` into a temporary sibling and renamed into place, unless a
    complete copy (one holding `marker`) is already there."""
    if (final / marker).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}-"))
    try:
        build(tmp)
        try:
            os.rename(tmp, final)  # another process may have won the race: keep its copy
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
