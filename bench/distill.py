"""Benchmark distillation: KD-with-cache step cost, cache savings, FLOP use, batched generation.

Prints JSON lines, one per figure, each with the baseline it was measured beside in this run:
(a) plain SFT step, (b) KD step with cached top-k (goal b/a <= 1.10), (b2) the same with the
cross-tokenizer loss (KL on shared tokens + ULD, every position aligned), (c) online KD step
(teacher forward every step), (d) teacher cost of a second cycle with 10% new records over a
full recompute (goal <= 0.10), (e) training FLOP utilisation, 6·params·tokens/step time over
a matmul peak measured here (goal >= 75%), (f) batched over unbatched generation tokens/s, in
padded batches and continuously batched (goal >= 10x), (g) KD training tokens/s on records
of the demo's lengths, each batching (auto, packed, by_length) over padded batches, and
batches filled to a token budget (`batch_tokens`) instead of a record count.

    python bench/distill.py --quick                      # tiny models, seconds
    python bench/distill.py                              # SmolLM2 pair on CPU (minutes)
    python bench/distill.py --device cuda --preset llama-1b
    python bench/distill.py --only f                     # (f) alone, SmolLM2 on CPU
    python bench/distill.py --only g                     # (g) alone
    python bench/distill.py --only d                     # (d) alone
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from _generation import generation, sync  # noqa: E402
from _packing import packing, task_length_records  # noqa: E402
from _teacher_cost import bench_cache, second_cycle_cost  # noqa: E402
from _timing import StepTimer  # noqa: E402
from _xtok import as_xtok, loss_costs  # noqa: E402
from datasets import Dataset  # noqa: E402
from peft import get_peft_model  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from tasks.distill.config import DistillConfig  # noqa: E402
from tasks.distill.signals import fill_topk_cache  # noqa: E402
from tasks.distill.train import sft_args  # noqa: E402
from tasks.distill.trainer import DistillTrainer, KDCollator, KDSettings  # noqa: E402
from tasks.models.adapters import lora_config  # noqa: E402
from tasks.models.load import load_model_and_tokenizer  # noqa: E402
from tasks.models.precision import device_precision  # noqa: E402
from tasks.models.presets import get_preset  # noqa: E402
from tasks.models.tiny import build_tiny_tokenizer  # noqa: E402

PAIRS = {
    "tiny": ("tiny-llama-teacher", "tiny-llama-student"),
    "smollm2": ("smollm2-135m-instruct", "smollm2-pruned-student"),
}
# Llama-3.2-1B's shape (random weights: nothing is downloaded).
LLAMA_1B = {
    "vocab_size": 128256,
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": True,
    "rope_theta": 500000.0,
}


def emit(**row: Any) -> None:
    """One JSON line, flushed."""
    print(json.dumps(row), flush=True)


def models(preset: str, device: str) -> tuple[Any, Any, Any, int]:
    """(teacher, student base, tokenizer, pad id) for the chosen preset."""
    if preset == "llama-1b":
        dtype = device_precision(device).dtype  # fp16 on a T4, bf16 from Ampere, fp32 on CPU
        built = []
        for seed in (0, 1):
            torch.manual_seed(seed)
            built.append(LlamaForCausalLM(LlamaConfig(**LLAMA_1B)).to(device, dtype))
        return built[0].eval(), built[1], build_tiny_tokenizer("a"), 0
    teacher_name, student_name = PAIRS[preset]
    teacher, tok = load_model_and_tokenizer(teacher_name, device=device, quantize_4bit=False)
    student, _ = load_model_and_tokenizer(
        student_name, device=device, for_training=True, quantize_4bit=False
    )
    return teacher, student, tok, tok.pad_token_id


def records(n: int, vocab: int, prompt_len: int, answer_len: int, seed: int) -> Dataset:
    """Token-level records (prompt masked out of the labels), hashed by content."""
    rng = random.Random(seed)
    rows: dict[str, list[Any]] = {"input_ids": [], "labels": [], "record_hash": []}
    for i in range(n):
        ids = [rng.randrange(3, vocab) for _ in range(prompt_len + answer_len)]
        rows["input_ids"].append(ids)
        rows["labels"].append([-100] * prompt_len + ids[prompt_len:])
        rows["record_hash"].append(f"{seed:04d}{i:060d}")
    return Dataset.from_dict(rows)


def step_time(
    student: Any, tok: Any, data: Dataset, args: Any, device: str, xtok: Any = None, **kd: Any
) -> float:
    """Median step time (after 2 warm-up steps) of DistillTrainer on `data`."""
    timer = StepTimer(device)
    settings = KDSettings(alpha=0.5, temperature=2.0, top_k=16)
    if xtok is not None:  # (unshared student tokens, KL weight)
        settings.student_unshared, settings.matched_weight = xtok
    trainer = DistillTrainer(
        model=student,
        args=args,
        train_dataset=data,
        processing_class=tok,
        data_collator=KDCollator(tok.pad_token_id),
        callbacks=[timer],
        kd=settings,
        **kd,
    )
    trainer.train()
    return statistics.median(timer.times[2:])


def with_topk(teacher: Any, data: Dataset, pad: int, k: int, batch: int, root: Path) -> Dataset:
    """`data` with cached teacher top-k columns (filled here)."""
    from tasks.distill.signals import attach_topk

    cache = bench_cache(root, k)
    fill_topk_cache(
        cache, data, lambda: teacher, k=k, temperature=2.0, batch_size=batch, pad_id=pad
    )
    return attach_topk(cache, data)


def matmul_peak(device: str, dtype: torch.dtype, n: int) -> float:
    """Best-of-5 FLOP/s of an n×n @ n×n matmul."""
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(5):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preset", choices=["tiny", "smollm2", "llama-1b"], default=None)
    parser.add_argument("--quick", action="store_true", help="tiny models, few steps")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--seq", type=int, default=None, help="tokens per record")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--records", type=int, default=None, help="first-cycle records for (d)")
    parser.add_argument("--gen-batch", type=int, default=None)
    parser.add_argument(
        "--only", choices=["d", "f", "g"], default=None, help="run one section only"
    )
    # On a shared (oversubscribed) CPU, OpenMP's spinning threads make small GEMMs slower with
    # 2 threads than with 1: measured here, batch-16 576x1536 linear 3.2 ms vs 0.62 ms.
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default: all]")
    parser.add_argument(
        "--gen-new-tokens",
        type=int,
        default=None,
        help="(f) answer budget [default: 128, DistillConfig.gen_max_new_tokens; 32 with --quick]",
    )
    parser.add_argument(
        "--gen-prompts",
        choices=["tasks", "random"],
        default=None,
        help="(f) chat-template training prompts or random ids [default: tasks; random for "
        "llama-1b, which has no real tokenizer]",
    )
    opt = parser.parse_args()
    if opt.threads:
        torch.set_num_threads(opt.threads)
    cuda = opt.device.startswith("cuda")
    preset = opt.preset or ("tiny" if opt.quick else ("llama-1b" if cuda else "smollm2"))
    batch = opt.batch or (8 if cuda else 4)
    seq = opt.seq or (512 if cuda else (64 if preset == "tiny" else 256))
    steps = opt.steps or (6 if opt.quick else 10)
    n_records = opt.records or (20 if opt.quick else (200 if cuda else 40))
    gen_batch = opt.gen_batch or (32 if cuda else 16)
    gen = (
        opt.gen_new_tokens or (32 if opt.quick else DistillConfig().gen_max_new_tokens),
        opt.gen_prompts or ("random" if preset == "llama-1b" else "tasks"),
    )
    context = {"device": opt.device, "preset": preset, "batch": batch, "seq": seq}
    if cuda:
        context["gpu"] = torch.cuda.get_device_name()
    emit(figure="context", **context, torch=torch.__version__, threads=torch.get_num_threads())

    teacher, base, tok, pad = models(preset, opt.device)
    vocab = teacher.config.vocab_size
    name = PAIRS.get(preset, ("", "tiny-llama-student"))[1]
    prompt_len = seq // 4
    if opt.only == "f":
        prompts = generation_prompts(tok, vocab, prompt_len, 4 * gen_batch, gen[1])
        generation(teacher, tok, pad, vocab, preset, prompts, gen_batch, opt.device, *gen)
        return 0
    student = get_peft_model(base, lora_config(get_preset(name)))
    tmp = Path(tempfile.mkdtemp(prefix="bench-distill-"))
    if opt.only == "g":
        packing_figure(teacher, student, tok, pad, vocab, batch, steps, tmp, opt.device, name)
        return 0
    if opt.only == "d":
        teacher_cost_figure(teacher, pad, vocab, batch, n_records, prompt_len, seq, tmp, opt.device)
        return 0
    data = records(batch * (steps + 2), vocab, prompt_len, seq - prompt_len, seed=1)
    kd_data = with_topk(teacher, data, pad, 16, batch, tmp / "cache-steps")
    from tasks.distill.train import _fast_teacher_columns

    kd_data = _fast_teacher_columns(kd_data)  # as train_student feeds it
    config = sft_args_for(batch, steps + 2, tmp, opt.device, name)

    t_sft = step_time(student, tok, data, config, opt.device)
    emit(figure="a_sft_step_s", value=t_sft, **context)
    t_kd = step_time(student, tok, kd_data, config, opt.device)
    emit(figure="b_kd_cached_step_s", value=t_kd, ratio_to_sft=t_kd / t_sft, goal="<= 1.10")
    x_data, x_vocab = as_xtok(kd_data, vocab)
    t_x = step_time(student, tok, _fast_teacher_columns(x_data), config, opt.device, x_vocab)
    emit(
        figure="b2_xtok_cached_step_s",
        value=t_x,
        ratio_to_sft=t_x / t_sft,
        ratio_to_same_vocab_kd=t_x / t_kd,
        shared_share=x_vocab[1],
    )
    n_tok = batch * (seq - prompt_len)  # the loss alone, at this step's shape, interleaved
    costs = loss_costs(vocab, n_tok, 16, opt.device)
    ratios = {
        "ratio": costs["xtok"] / costs["same_vocab"],
        "cpu_ratio": costs["xtok_cpu"] / costs["same_vocab_cpu"],
    }
    emit(figure="b3_loss_fwd_bwd_s", **costs, **ratios, tokens=n_tok, vocab=vocab)
    t_online = step_time(student, tok, data, config, opt.device, online_teacher=teacher)
    emit(
        figure="c_kd_online_step_s",
        value=t_online,
        ratio_to_sft=t_online / t_sft,
        ratio_to_cached=t_online / t_kd,
    )

    teacher_cost_figure(teacher, pad, vocab, batch, n_records, prompt_len, seq, tmp, opt.device)

    # (e) 6·params·tokens per step over the measured matmul peak, in the training dtype.
    params = sum(p.numel() for p in student.parameters())
    tokens = batch * seq
    train_dtype = device_precision(opt.device).dtype  # what training computes in here
    peak = matmul_peak(opt.device, train_dtype, 8192 if cuda else 2048)
    peak32 = matmul_peak(opt.device, torch.float32, 8192 if cuda else 2048)
    flops = 6 * params * tokens / t_sft
    emit(
        figure="e_train_flop_utilisation",
        value=flops / peak,
        goal=">= 0.75",
        achieved_tflops=flops / 1e12,
        matmul_peak_tflops=peak / 1e12,
        matmul_peak_dtype=str(train_dtype),
        fp32_matmul_peak_tflops=peak32 / 1e12,
        params=params,
        tokens_per_step=tokens,
        note="6N counts weight gradients that frozen LoRA bases never compute (real work ~4N)",
        utilisation_4n=(4 * params * tokens / t_sft) / peak,
    )

    packing_figure(teacher, student, tok, pad, vocab, batch, steps, tmp, opt.device, name)
    prompts = generation_prompts(tok, vocab, prompt_len, 4 * gen_batch, gen[1])
    generation(teacher, tok, pad, vocab, preset, prompts, gen_batch, opt.device, *gen)
    return 0


def teacher_cost_figure(
    teacher: Any,
    pad: int,
    vocab: int,
    batch: int,
    n_records: int,
    prompt_len: int,
    seq: int,
    tmp: Path,
    device: str,
) -> None:
    """(d) on `n_records` first-cycle records and 10% new ones (bench/_teacher_cost.py)."""
    first = records(n_records, vocab, prompt_len, seq - prompt_len, seed=2)
    new = records(max(1, n_records // 10), vocab, prompt_len, seq - prompt_len, seed=3)
    second_cycle_cost(teacher, first, new, pad, batch, tmp, device)


def packing_figure(
    teacher: Any,
    student: Any,
    tok: Any,
    pad: int,
    vocab: int,
    batch: int,
    steps: int,
    tmp: Path,
    device: str,
    name: str,
) -> None:
    """(g) on 4·steps batches of records with the demo's lengths, their top-k cached."""
    from tasks.distill.train import _fast_teacher_columns

    data = task_length_records(tok, vocab, 4 * steps * batch, seed=5)
    data = data.select(range(len(data) - len(data) % batch))  # whole batches only
    kd_data = _fast_teacher_columns(with_topk(teacher, data, pad, 16, batch, tmp / "cache-g"))
    args = sft_args_for(batch, len(data) // batch, tmp, device, name)
    packing(student, tok, kd_data, args, device)


def generation_prompts(tok: Any, vocab: int, prompt_len: int, n: int, kind: str) -> list[list[int]]:
    """Training prompts in the teacher's chat template ("tasks"), or random ids ("random")."""
    # "tasks" is what teacher_answers sends; random ids serve presets without a real tokenizer.
    if kind == "tasks":
        from tasks.distill.data import prompt_ids
        from tasks.sampledata import training_tasks

        return [
            prompt_ids(
                tok, [{"role": "user", "content": t.prompt}, {"role": "assistant", "content": ""}]
            )
            for t in training_tasks()[:n]
        ]
    prompts = [r[:prompt_len] for r in records(n, vocab, prompt_len, 0, seed=4)["input_ids"]]
    # Different prompt lengths, so the batch is really left-padded.
    return [p[: max(4, prompt_len - i % 5)] for i, p in enumerate(prompts)]


def sft_args_for(batch: int, steps: int, tmp: Path, device: str, student: str) -> Any:
    """Trainer arguments: fixed batch and steps, no checkpoints, no eval."""
    from tasks.distill.config import DistillConfig

    cfg = DistillConfig(
        per_device_batch_size=batch,
        grad_accum=1,
        max_steps=steps,
        save_steps=10**6,
        logging_steps=10**6,
        device=device,
    )
    args = sft_args(cfg, student if student else "tiny-llama-student", tmp / "ckpt", device)
    return args


if __name__ == "__main__":
    sys.exit(main())
