"""The seed models' real tokenizers, rebuilt offline and written as their Hub repos ship them.

From the vocabulary GGUFs in the pinned llama-cpp-python sdist (Mistral v3's from the
mistral-common wheel): a SentencePiece `tokenizer.model` for Mistral/Phi-3/TinyLlama, a
byte-level BPE `tokenizer.json` for Llama-3.x/Qwen2.5, with the real chat template.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tasks.models.llama_cpp_source import LlamaCppSource, llama_cpp_source
from tasks.models.seed_models import (
    BPE_FLAVOURS,
    MISTRAL_V3,
    SeedModel,
)


def _vocab_fields(src: LlamaCppSource, vocab: str) -> dict[str, Any]:
    """tokenizer.* keys of a vocabulary GGUF, read with the sdist's own gguf-py reader."""
    import gguf  # the installed gguf reads these files; only the converter needs the sdist's

    fields = gguf.GGUFReader(src.vocab(vocab)).fields
    return {k: f.contents() for k, f in fields.items() if k.startswith("tokenizer.")}


def _write_sentencepiece(fields: dict[str, Any], n_pieces: int, out: Path) -> None:
    """A Llama-2 style SentencePiece BPE model (byte fallback) from GGUF pieces and scores."""
    from sentencepiece import sentencepiece_model_pb2

    sp_pb2: Any = sentencepiece_model_pb2  # generated protobuf classes: no stubs for mypy

    proto = sp_pb2.ModelProto()
    # GGUF token types 1..6 are SentencePiece's piece types NORMAL..BYTE plus one.
    for piece, score, kind in zip(
        fields["tokenizer.ggml.tokens"][:n_pieces],
        fields["tokenizer.ggml.scores"][:n_pieces],
        fields["tokenizer.ggml.token_type"][:n_pieces],
        strict=True,
    ):
        proto.pieces.add(piece=piece, score=float(score), type=int(kind))
    spec = proto.trainer_spec
    spec.model_type = sp_pb2.TrainerSpec.BPE
    spec.vocab_size = n_pieces
    spec.byte_fallback = True
    spec.unk_id, spec.bos_id, spec.eos_id, spec.pad_id = 0, 1, 2, -1
    norm = proto.normalizer_spec
    norm.name, norm.add_dummy_prefix = "identity", True
    norm.remove_extra_whitespaces, norm.escape_whitespaces = False, True
    out.write_bytes(proto.SerializeToString())


def _spm_tokenizer(model: SeedModel, src: LlamaCppSource, out_dir: Path) -> None:
    from tokenizers import AddedToken
    from transformers import AutoTokenizer

    added: list[AddedToken] = []
    pad = model.pad_token
    if model.vocab == MISTRAL_V3:  # its control tokens are pieces of the model itself
        from tasks.models import mistral_vocab

        mistral_vocab.write_v3_files(out_dir)
    else:
        fields = _vocab_fields(src, model.vocab)
        types, tokens = fields["tokenizer.ggml.token_type"], fields["tokenizer.ggml.tokens"]
        # Phi-3: 32000 SentencePiece pieces, then added tokens (<|user|>, ...) and padding.
        n_pieces = 32000
        _write_sentencepiece(fields, n_pieces, out_dir / "tokenizer.model")
        config = {
            "tokenizer_class": "LlamaTokenizer",
            "bos_token": tokens[fields["tokenizer.ggml.bos_token_id"]],
            "eos_token": tokens[fields["tokenizer.ggml.eos_token_id"]],
            "unk_token": "<unk>",
            "add_bos_token": True,
            "add_eos_token": False,
            "legacy": False,
        }
        (out_dir / "tokenizer_config.json").write_text(json.dumps(config))
        added = [
            AddedToken(tokens[i], special=types[i] == 3, normalized=False, rstrip=False)
            for i in range(n_pieces, len(tokens))
            if types[i] in (3, 4)  # CONTROL, USER_DEFINED; UNUSED ids are model-only padding
        ]
        if pad is None and "tokenizer.ggml.padding_token_id" in fields:
            pad = tokens[fields["tokenizer.ggml.padding_token_id"]]
    # transformers converts tokenizer.model into tokenizer.json, as for the real repos.
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    tokenizer.add_tokens(added)
    if pad is not None:
        tokenizer.pad_token = pad
    _finish(tokenizer, model, src, out_dir)


def _bpe_tokenizer(model: SeedModel, src: LlamaCppSource, out_dir: Path) -> None:
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
    )
    from transformers import PreTrainedTokenizerFast

    flavour = BPE_FLAVOURS[model.vocab]
    fields = _vocab_fields(src, model.vocab)
    tokens, types = fields["tokenizer.ggml.tokens"], fields["tokenizer.ggml.token_type"]
    normal = {tok: i for i, tok in enumerate(tokens) if types[i] == 1}
    merges = [tuple(m.split(" ", 1)) for m in fields["tokenizer.ggml.merges"]]
    backend = Tokenizer(models.BPE(normal, merges, ignore_merges=flavour.ignore_merges))
    if flavour.nfc:
        backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(flavour.split), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    # Control tokens follow the ordinary ones, so they keep their ids; then the names the
    # real tokenizer gives the vocabulary's padding ids (Qwen2.5's), also in order.
    controls = [tokens[i] for i, t in enumerate(types) if t == 3]
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in controls])
    for i, name in enumerate(flavour.added):
        special = i < flavour.special_added
        backend.add_tokens([AddedToken(name, special=special, normalized=False)])
    if len(backend.get_vocab(with_added_tokens=True)) != len(normal) + len(controls) + len(
        flavour.added
    ):
        raise ValueError(f"{model.vocab}: ordinary tokens are not all below the control tokens")
    bos = tokens[fields["tokenizer.ggml.bos_token_id"]] if flavour.add_bos else None
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=bos,
        eos_token=model.eos_token or tokens[fields["tokenizer.ggml.eos_token_id"]],
        pad_token=model.pad_token,
        add_bos_token=flavour.add_bos,
    )
    _finish(tokenizer, model, src, out_dir)


def chat_template(model: SeedModel, src: LlamaCppSource) -> str:
    """The model's chat template (a real one from the sdist where it ships one)."""
    if model.chat_template.startswith("llama.cpp:"):
        return src.chat_template(model.chat_template.removeprefix("llama.cpp:"))
    return model.chat_template


def _finish(tokenizer: Any, model: SeedModel, src: LlamaCppSource, out_dir: Path) -> None:
    tokenizer.chat_template = chat_template(model, src)
    tokenizer.model_max_length = model.extra_config.get("max_position_embeddings", 2048)
    tokenizer.save_pretrained(out_dir)


def build_seed_tokenizer(model: SeedModel, out_dir: Path) -> Path:
    """Write `model`'s real tokenizer (files as its Hub repo has them) into `out_dir`."""
    src = llama_cpp_source()
    out_dir.mkdir(parents=True, exist_ok=True)
    if model.vocab == MISTRAL_V3 or model.vocab not in BPE_FLAVOURS:
        _spm_tokenizer(model, src, out_dir)
    else:
        _bpe_tokenizer(model, src, out_dir)
    return out_dir
