"""When a training batch is packed into one row (padding-free) rather than padded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

# auto: packed when it costs less; padded / packed: forced; by_length: padded batches of
# records of similar length (transformers' group_by_length sampler): which records train
# together changes, so it is a choice, not the default.
Batching = Literal["auto", "padded", "packed", "by_length"]


@dataclass(frozen=True)
class PackingPolicy:
    """Per batch: pack when it costs less than padding (`auto`), always, or never.

    A packed row has no padding, but attention must keep its records apart. A varlen kernel
    (flash attention) does that at no extra cost, so `auto` always packs there. Other kernels
    (sdpa, eager) get a block-diagonal mask over the whole row and still compute every
    query-key pair in it: attention grows with the row's length squared. `auto` then compares
    the two layouts' cost, tokens × (1 + context / (6·hidden)), where 6·hidden is roughly a
    decoder layer's linear FLOPs per token over its attention FLOPs per context token (≈
    24·hidden² over 4·hidden, forward; the backward pass triples both). Both layouts give the
    same loss and gradients, so a wrong guess costs only time. Measured in
    `bench/distill.py (g)`.
    """

    batching: Batching = "auto"
    hidden_size: int = 0
    varlen: bool = False

    @classmethod
    def for_model(cls, batching: Batching, model: Any) -> PackingPolicy:
        """The policy for `model`'s width and attention kernel."""
        config = model.config
        impl = str(getattr(config, "_attn_implementation", None) or "")
        hidden = getattr(config, "hidden_size", 0) or 0
        return cls(batching, hidden_size=hidden, varlen="flash" in impl)

    def packs(self, lengths: list[int]) -> bool:
        """Whether records of these token lengths go into one row."""
        return self._packs(len(lengths), sum(lengths), max(lengths))

    def slots(self, count: int, total: int, longest: int) -> int:
        """Token slots a batch of `count` records (`total` tokens, the longest `longest`) fills
        in the layout this policy gives it: its tokens when packed, else count × longest."""
        return total if self._packs(count, total, longest) else count * longest

    def _packs(self, count: int, total: int, longest: int) -> bool:
        if self.batching != "auto":
            return self.batching == "packed"  # padded and by_length pad
        if self.varlen:
            return True
        if self.hidden_size <= 0:  # unknown width: the layout that cannot grow quadratically
            return False
        scale = 6 * self.hidden_size
        packed = total * (1 + total / scale)
        padded = count * longest * (1 + longest / scale)
        return packed < padded
