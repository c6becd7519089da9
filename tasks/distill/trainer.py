"""SFTTrainer with a KD loss from cached (or online) teacher top-k; plain SFT otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch.utils.data import DataLoader
from transformers.trainer_utils import seed_worker
from trl import SFTTrainer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from tasks.distill.loss import kd_loss, mix_weights
from tasks.distill.packing import PackingPolicy
from tasks.distill.signals import target_mask
from tasks.distill.token_budget import TokenBudgetBatches, record_lengths
from tasks.distill.xtok import xtok_divergence
from tasks.models.batching import pad_batch

TEACHER_COLUMNS = ("t_ids", "t_logprobs", "t_tail", "t_pos")


@dataclass
class KDCollator:
    """Token rows padded, or packed into one row; per-target teacher rows in batch order.

    Packed is TRL's padding-free collation: the records are concatenated into one row with
    position ids restarting at each record, so no token is padding, and attention keeps the
    records apart. `packing` decides per batch (tasks/distill/packing.py). Target tokens keep
    their order either way, so the teacher rows line up the same.
    """

    pad_token_id: int
    packing: PackingPolicy = PackingPolicy("padded")

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if self.packing.packs([len(e["input_ids"]) for e in examples]):
            tokens = [{"input_ids": e["input_ids"], "labels": e["labels"]} for e in examples]
            batch = DataCollatorForLanguageModeling(self.pad_token_id, padding_free=True)(tokens)
        else:
            batch = pad_batch(examples, self.pad_token_id)
        if "corrected" in examples[0]:
            batch["corrected"] = torch.tensor([bool(e["corrected"]) for e in examples])
        if "t_pos" in examples[0]:
            batch.update(_aligned_rows(examples))
        elif "t_ids" in examples[0]:  # tensors when the dataset has torch format (fast path)
            batch["t_ids"] = torch.cat([torch.as_tensor(e["t_ids"]) for e in examples]).long()
            for key in ("t_logprobs", "t_tail"):
                batch[key] = torch.cat([torch.as_tensor(e[key]) for e in examples]).float()
        return batch


def _aligned_rows(examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Cross-tokenizer rows of a batch: positions shifted to index the batch's target tokens."""
    pos, ids, logprobs, tails, start = [], [], [], [], 0
    for e in examples:
        if len(e["t_pos"]):
            pos.append(torch.as_tensor(e["t_pos"]).long() + start)
            ids.append(torch.as_tensor(e["t_ids"]).long())
            logprobs.append(torch.as_tensor(e["t_logprobs"]).float())
            tails.append(torch.as_tensor(e["t_tail"]).float())
        start += sum(1 for x in list(e["labels"])[1:] if x != -100)
    if not pos:  # no aligned position in this batch: CE only
        return {"t_pos": torch.zeros(0, dtype=torch.long)}
    return {
        "t_pos": torch.cat(pos),
        "t_ids": torch.cat(ids),
        "t_logprobs": torch.cat(logprobs),
        "t_tail": torch.cat(tails),
    }


@dataclass
class KDSettings:
    """Loss weights: alpha on CE (correction_alpha on corrected records), T, divergence, k."""

    alpha: float = 0.5
    temperature: float = 2.0
    divergence: str = "forward_kl"
    top_k: int = 16
    correction_alpha: float = 1.0
    # Cross-tokenizer only: the student's tokens without a teacher counterpart, KL's share.
    student_unshared: torch.Tensor | None = None
    matched_weight: float = 1.0

    def token_alpha(
        self, corrected: torch.Tensor | None, rows: torch.Tensor
    ) -> torch.Tensor | float:
        """CE weight per target token (`rows`: its record); a float when none is corrected."""
        if corrected is None or not bool(corrected.any()):
            return self.alpha
        per_row = torch.where(corrected, self.correction_alpha, self.alpha).float()
        return per_row.to(rows.device)[rows]


class DistillTrainer(SFTTrainer):
    """SFTTrainer with a KD loss when the batch carries teacher signals (or online), and
    batches filled to a token budget when one is set."""

    def __init__(
        self,
        *args: Any,
        kd: KDSettings | None = None,
        online_teacher: Any = None,
        batch_tokens: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.kd = kd or KDSettings()
        self.online_teacher = online_teacher  # benchmark baseline: teacher forward every step
        self.batch_tokens = batch_tokens  # None: the args' fixed record count per batch

    def get_train_dataloader(self) -> DataLoader:
        """Batches filled to `batch_tokens` when set (tasks/distill/token_budget.py)."""
        if self.batch_tokens is None or self.train_dataset is None:
            return super().get_train_dataloader()
        # A batch's slots are counted in the layout the collator will give it.
        batches = TokenBudgetBatches(
            record_lengths(self.train_dataset),
            self.batch_tokens,
            getattr(self.data_collator, "packing", PackingPolicy("padded")),
            seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed,
        )
        args = self.args
        loader = DataLoader(
            self.train_dataset,
            batch_sampler=batches,
            collate_fn=self.data_collator,
            num_workers=args.dataloader_num_workers,
            pin_memory=args.dataloader_pin_memory,
            worker_init_fn=partial(
                seed_worker, num_workers=args.dataloader_num_workers, rank=args.process_index
            ),
        )
        # Several processes: accelerate hands each one its share of the batches.
        return self.accelerator.prepare(loader)

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        """α·CE + (1−α)·T²·divergence on assistant tokens; TRL's SFT loss without a teacher."""
        teacher = {k: inputs.pop(k) for k in TEACHER_COLUMNS if k in inputs}
        corrected = inputs.pop("corrected", None)
        if not teacher and self.online_teacher is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs["labels"]
        mask = target_mask(labels)
        targets = labels[:, 1:][labels[:, 1:] != -100]
        # ids with their attention mask, or (packed) with position ids and sequence bounds
        fwd = {k: v for k, v in inputs.items() if k != "labels"}
        if not teacher:
            from tasks.distill.signals import topk_of_batch

            rows = topk_of_batch(self.online_teacher, inputs, self.kd.top_k, self.kd.temperature)
            teacher = {
                "t_ids": torch.cat([r["ids"] for r in rows]).long(),
                "t_logprobs": torch.cat([r["logprobs"] for r in rows]),
                "t_tail": torch.cat([r["tail"] for r in rows]),
            }
        # Logits only where a target is predicted: [N, V], row-major like the teacher rows.
        outputs = model(**fwd, logits_to_keep=mask, use_cache=False)
        # The record each target token belongs to: its row, or in a packed row its sequence.
        records = inputs["seq_idx"][mask] if "seq_idx" in inputs else mask.nonzero()[:, 0]
        alpha = self.kd.token_alpha(corrected, records.long())
        if "t_pos" in teacher:
            loss, parts = self._xtok_loss(
                outputs.logits, targets, teacher, alpha, num_items_in_batch
            )
        else:
            loss, parts = kd_loss(
                outputs.logits,
                targets,
                teacher["t_ids"],
                teacher["t_logprobs"],
                teacher["t_tail"],
                alpha=alpha,
                temperature=self.kd.temperature,
                kind=self.kd.divergence,
                num_items=num_items_in_batch,
            )
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # as SFTTrainer: DDP averages gradients
        mode = "train" if model.training else "eval"
        for name in ("kl", "uld"):
            if name in parts:
                self._metrics[mode][f"kd_{name}"].append(parts[name])
        self._metrics[mode]["kd_ce"].append(parts["ce"])
        self._metrics[mode]["kd_divergence"].append(parts["div"])
        return (loss, outputs) if return_outputs else loss

    def _xtok_loss(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        teacher: dict[str, torch.Tensor],
        alpha: float | torch.Tensor,
        num_items: Any,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """α·CE on every target + (1−α)·T²·(KL + ULD) on the positions aligned to the teacher."""
        n = targets.numel()
        denom = torch.as_tensor(num_items if num_items is not None else n).clamp(min=1)
        a = mix_weights(alpha, n, logits.device)
        ce = torch.nn.functional.cross_entropy(logits.float(), targets, reduction="none")
        loss_sum = (a * ce).sum()
        pos = teacher["t_pos"].to(logits.device)
        kl = uld = torch.zeros((), device=logits.device)
        if pos.numel() and self.kd.student_unshared is not None:
            kl_rows, uld_rows = xtok_divergence(
                logits[pos],
                teacher["t_ids"].to(logits.device),
                teacher["t_logprobs"].to(logits.device),
                self.kd.student_unshared,
                temperature=self.kd.temperature,
                matched_weight=self.kd.matched_weight,
            )
            scale = (1 - a[pos]) * self.kd.temperature**2
            kl, uld = (scale * kl_rows).sum(), (scale * uld_rows).sum()
            loss_sum = loss_sum + kl + uld
        n_local = max(n, 1)
        parts = {"ce": ce.sum().item() / n_local, "div": (kl + uld).item() / n_local}
        parts |= {"kl": kl.item() / n_local, "uld": uld.item() / n_local}
        return loss_sum / denom.to(logits.device), parts
