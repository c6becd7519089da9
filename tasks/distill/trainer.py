"""SFTTrainer with a KD loss from cached (or online) teacher top-k; plain SFT otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from trl import SFTTrainer

from tasks.distill.loss import kd_loss
from tasks.distill.signals import pad_batch, target_mask

TEACHER_COLUMNS = ("t_ids", "t_logprobs", "t_tail")


@dataclass
class KDCollator:
    """Right-pads input_ids/labels; concatenates per-target teacher rows in batch order."""

    pad_token_id: int

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = pad_batch(examples, self.pad_token_id)
        if "corrected" in examples[0]:
            batch["corrected"] = torch.tensor([bool(e["corrected"]) for e in examples])
        if "t_ids" in examples[0]:  # tensors when the dataset has torch format (fast path)
            batch["t_ids"] = torch.cat([torch.as_tensor(e["t_ids"]) for e in examples]).long()
            for key in ("t_logprobs", "t_tail"):
                batch[key] = torch.cat([torch.as_tensor(e[key]) for e in examples]).float()
        return batch


@dataclass
class KDSettings:
    """Loss weights: alpha on CE (correction_alpha on corrected records), T, divergence, k."""

    alpha: float = 0.5
    temperature: float = 2.0
    divergence: str = "forward_kl"
    top_k: int = 16
    correction_alpha: float = 1.0

    def token_alpha(
        self, corrected: torch.Tensor | None, rows: torch.Tensor
    ) -> torch.Tensor | float:
        """CE weight per target token (`rows`: its batch row); a float when none is corrected."""
        if corrected is None or not bool(corrected.any()):
            return self.alpha
        per_row = torch.where(corrected, self.correction_alpha, self.alpha).float()
        return per_row.to(rows.device)[rows]


class DistillTrainer(SFTTrainer):
    """Overrides compute_loss only: KD when the batch carries teacher signals (or online)."""

    def __init__(
        self, *args: Any, kd: KDSettings | None = None, online_teacher: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.kd = kd or KDSettings()
        self.online_teacher = online_teacher  # benchmark baseline: teacher forward every step

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
        fwd = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}
        if not teacher:
            from tasks.distill.signals import topk_of_batch

            rows = topk_of_batch(
                self.online_teacher, {**fwd, "labels": labels}, self.kd.top_k, self.kd.temperature
            )
            teacher = {
                "t_ids": torch.cat([r["ids"] for r in rows]).long(),
                "t_logprobs": torch.cat([r["logprobs"] for r in rows]),
                "t_tail": torch.cat([r["tail"] for r in rows]),
            }
        # Logits only where a target is predicted: [N, V], row-major like the teacher rows.
        outputs = model(**fwd, logits_to_keep=mask, use_cache=False)
        loss, parts = kd_loss(
            outputs.logits,
            targets,
            teacher["t_ids"],
            teacher["t_logprobs"],
            teacher["t_tail"],
            alpha=self.kd.token_alpha(corrected, mask.nonzero()[:, 0]),
            temperature=self.kd.temperature,
            kind=self.kd.divergence,
            num_items=num_items_in_batch,
        )
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # as SFTTrainer: DDP averages gradients
        mode = "train" if model.training else "eval"
        self._metrics[mode]["kd_ce"].append(parts["ce"])
        self._metrics[mode]["kd_divergence"].append(parts["div"])
        return (loss, outputs) if return_outputs else loss
