"""Tiny random models with a locally trained byte-level BPE tokenizer, for fast tests."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    Phi3Config,
    Phi3ForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# ChatML as SmolLM2 writes it, with {% generation %} markers so TRL's assistant-only loss and
# `return_assistant_tokens_mask` work.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# A fixed built-in corpus: the tokenizer must not depend on files outside the package.
_CORPUS = """\
Rewrite the sentence and make your writing clearer by keeping it concise.
Write a short story about a robot who learns to paint in the style of the old masters.
Explain why the sky is blue in simple words that a child could understand.
Give three tips for staying healthy during the winter months.
Translate the following sentence into French: The weather is nice today.
Summarize the main points of the article in two sentences.
What is the capital of France? The capital of France is Paris.
List five fruits that are red: strawberry, cherry, apple, raspberry, pomegranate.
Classify the sentiment of this review as positive or negative: I loved the film.
Write a Python function that returns the sum of two numbers.
def add(a, b):
    return a + b
Suggest a name for a coffee shop that also sells books and plants.
The quick brown fox jumps over the lazy dog while the cat watches from the window.
Please let me know if you have any questions about my rate or the scope of this project.
Convert 25 degrees Celsius to Fahrenheit. The answer is 77 degrees Fahrenheit.
Make a list of things to pack for a weekend camping trip in the mountains.
Answer the question based on the context below. If the answer is not in the context, say so.
Generate a polite email declining an invitation to a meeting next Tuesday.
Describe the process of photosynthesis in plants, including light and water.
Find the grammatical error in the sentence and correct it.
Is this number prime? 97 is a prime number because it has no divisors other than 1 and itself.
You are a helpful assistant. The user asks a question and the assistant answers it.
Thank you for your help! You are welcome, happy to help with anything else.
Sort these words in alphabetical order: banana, apple, cherry, date.
Create a recipe for a quick vegetarian dinner with rice, beans and tomatoes.
How many days are there in a leap year? There are 366 days in a leap year.
"""


def _corpus_lines(variant: str) -> list[str]:
    lines = [line for line in _CORPUS.splitlines() if line.strip()]
    return lines if variant == "a" else list(reversed(lines))


@lru_cache(maxsize=4)
def _trained_tokenizer_json(variant: str) -> str:
    """Train the BPE once per process; the JSON is immutable so callers get fresh copies."""
    if variant not in ("a", "b"):
        raise ValueError(f"tiny tokenizer variant must be 'a' or 'b', got {variant!r}")
    vocab_size = 600 if variant == "a" else 520  # "b" differs in size and merge order
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus_lines(variant), trainer=trainer)
    return tok.to_str()


def build_tiny_tokenizer(variant: str = "a") -> PreTrainedTokenizerFast:
    """A deterministic byte-level BPE with ChatML specials; 'b' has a different token→id map."""
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_trained_tokenizer_json(variant)),
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        model_max_length=2048,
    )
    tok.chat_template = CHATML_TEMPLATE
    return tok


def build_tiny_model(
    arch: Literal["llama", "phi3"] = "llama",
    tokenizer: PreTrainedTokenizerFast | None = None,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    seed: int = 0,
) -> PreTrainedModel:
    """A randomly initialised fp32 causal LM whose vocabulary matches `tokenizer`."""
    tokenizer = tokenizer or build_tiny_tokenizer("a")
    common = {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden_size,
        "intermediate_size": hidden_size * 2,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
        "num_key_value_heads": num_heads,
        "max_position_embeddings": 1024,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "tie_word_embeddings": False,
    }
    torch.manual_seed(seed)
    if arch == "llama":
        model: PreTrainedModel = LlamaForCausalLM(LlamaConfig(**common))
    elif arch == "phi3":
        model = Phi3ForCausalLM(Phi3Config(**common, original_max_position_embeddings=1024))
    else:
        raise ValueError(f"tiny arch must be 'llama' or 'phi3', got {arch!r}")
    return model.float().eval()


def save_tiny(
    out_dir: Path, arch: Literal["llama", "phi3"] = "llama", variant: str = "a", *, seed: int = 0
) -> Path:
    """Write a tiny model and its tokenizer with save_pretrained; returns `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer(variant)
    build_tiny_model(arch, tokenizer, seed=seed).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
