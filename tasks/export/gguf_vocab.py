"""Tokenizer metadata for GGUF: a byte-level BPE vocabulary as llama.cpp's "gpt2" model reads it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from gguf import GGUFWriter, TokenType
from transformers import AutoTokenizer, PreTrainedTokenizerBase


@dataclass
class GGUFVocab:
    """Everything the tokenizer.* keys of a GGUF file hold."""

    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    pre: str
    special_ids: dict[str, int] = field(default_factory=dict)
    add_bos: bool = False
    chat_template: str | None = None
    notes: list[str] = field(default_factory=list)


def _pre_tokenizer_name(tokenizer_json: dict) -> tuple[str, str | None]:
    """The llama.cpp pre-tokenizer name matching the HF pre-tokenizer, plus a note if unsure."""
    pre = tokenizer_json.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    kinds = [part.get("type") for part in parts]
    # llama.cpp spells the plain GPT-2 regex "gpt-2" (its model type is "gpt2").
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2", None
    # SmolLM2: digits split one by one, then the GPT-2 regex; llama.cpp calls this "smollm".
    if kinds == ["Digits", "ByteLevel"]:
        return "smollm", None
    return "default", f"pre-tokenizer {kinds} has no known llama.cpp name; wrote 'default'"


def _merges(tokenizer_json: dict) -> list[str]:
    """BPE merges as 'a b' strings (tokenizers writes them as pairs or as strings)."""
    merges = tokenizer_json["model"].get("merges", [])
    return [m if isinstance(m, str) else " ".join(m) for m in merges]


def build_vocab(tokenizer: PreTrainedTokenizerBase, vocab_size: int) -> GGUFVocab:
    """Vocabulary, token types, merges and special ids for a byte-level BPE tokenizer."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(f"GGUF export needs a fast tokenizer, got {type(tokenizer).__name__}")
    tokenizer_json = json.loads(backend.to_str())
    if tokenizer_json["model"].get("type") != "BPE":
        raise ValueError(
            f"GGUF export supports byte-level BPE tokenizers, got {tokenizer_json['model']['type']}"
        )
    pre_types = json.dumps(tokenizer_json.get("pre_tokenizer"))
    if tokenizer_json["model"].get("byte_fallback") or "Metaspace" in pre_types:
        # Llama-2/TinyLlama/Phi-3 style: llama.cpp wants tokenizer model "llama" with scores.
        raise ValueError(
            "GGUF export supports byte-level BPE tokenizers; this one is SentencePiece-style "
            "(byte_fallback/Metaspace), which is not supported yet"
        )
    vocab = tokenizer.get_vocab()
    if len(vocab) > vocab_size:
        raise ValueError(f"tokenizer has {len(vocab)} tokens but the model only {vocab_size}")
    # Ids the tokenizer does not use still need a row: llama.cpp marks them unused, like
    # convert_hf_to_gguf does.
    tokens = [f"[PAD{i}]" for i in range(vocab_size)]
    types = [int(TokenType.UNUSED)] * vocab_size
    for token, index in vocab.items():
        tokens[index], types[index] = token, int(TokenType.NORMAL)
    for index, added in backend.get_added_tokens_decoder().items():
        types[index] = int(TokenType.CONTROL if added.special else TokenType.USER_DEFINED)
    pre, note = _pre_tokenizer_name(tokenizer_json)
    special_ids = {
        name: token_id
        for name in ("bos", "eos", "unk", "pad")
        if (token_id := getattr(tokenizer, f"{name}_token_id", None)) is not None
    }
    probe = tokenizer("a")["input_ids"]
    add_bos = "bos" in special_ids and bool(probe) and probe[0] == special_ids["bos"]
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    return GGUFVocab(
        tokens=tokens,
        token_types=types,
        merges=_merges(tokenizer_json),
        pre=pre,
        special_ids=special_ids,
        add_bos=add_bos,
        chat_template=template,
        notes=[note] if note else [],
    )


def load_vocab(hf_dir: Path, vocab_size: int) -> GGUFVocab:
    """Read the tokenizer saved beside a model and turn it into GGUF metadata."""
    return build_vocab(AutoTokenizer.from_pretrained(hf_dir), vocab_size)


def add_vocab(writer: GGUFWriter, vocab: GGUFVocab) -> None:
    """Write the tokenizer.* keys."""
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.token_types)
    writer.add_token_merges(vocab.merges)
    adders = {
        "bos": writer.add_bos_token_id,
        "eos": writer.add_eos_token_id,
        "unk": writer.add_unk_token_id,
        "pad": writer.add_pad_token_id,
    }
    for name, token_id in vocab.special_ids.items():
        adders[name](token_id)
    writer.add_add_bos_token(vocab.add_bos)
    if vocab.chat_template:
        writer.add_chat_template(vocab.chat_template)
