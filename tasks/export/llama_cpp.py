"""llama.cpp through llama-cpp-python: quantize, and read a GGUF back the way phones will.

The native library is probed once per process in a child process that loads a file and
evaluates two tokens: a build for the wrong CPU dies there with SIGILL ("Illegal
instruction"), and that becomes a reason string instead of a crashed or hung caller.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.export.files import GGUFFile, describe

# llama.cpp's enum llama_ftype (stable values; llama.h)
FTYPES = {
    "F32": 0,
    "F16": 1,
    "Q4_0": 2,
    "Q4_1": 3,
    "Q8_0": 7,
    "Q4_K_M": 15,
    "Q5_K_M": 17,
    "Q6_K": 18,
}
PROBE_TIMEOUT_S = 180
_probe_results: dict[str, str | None] = {}


@dataclass(frozen=True)
class Skipped:
    """A file that was not produced, and why (a result, not an exception)."""

    quantization: str
    reason: str


class LlamaCppUnavailable(RuntimeError):
    """llama-cpp-python is missing, does not import, or crashes on this CPU."""


def llama_cpp_missing_reason() -> str | None:
    """None when llama_cpp imports; otherwise a sentence saying why it cannot be used."""
    if importlib.util.find_spec("llama_cpp") is None:
        return (
            "llama-cpp-python is not installed (`make install` builds it from the pinned sdist "
            "for this CPU, ~10 min on 2 cores, then caches the wheel)"
        )
    try:
        importlib.import_module("llama_cpp")
    except Exception as exc:  # a broken native build raises all sorts of errors
        return f"llama_cpp is installed but does not import: {exc}"
    return None


_PROBE = """
import sys, llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=64, n_threads=1, verbose=False)
ids = llm.tokenize(b"Hello world", add_bos=True)[:4] or [0]
llm.eval(ids)
print("ok", len(ids))
"""


def llama_cpp_crash_reason(gguf_path: Path) -> str | None:
    """None when llama.cpp loads `gguf_path` and evaluates in a child process; else why not.

    Cached per process: the first file probed decides (a CPU that faults faults on any file).
    """
    reason = llama_cpp_missing_reason()
    if reason is not None:
        return reason
    key = "probe"
    if key not in _probe_results:
        cmd = [sys.executable, "-c", _PROBE, str(gguf_path)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _probe_results[key] = f"llama.cpp hung for {PROBE_TIMEOUT_S}s evaluating {gguf_path}"
        else:
            if proc.returncode == 0 and proc.stdout.startswith("ok"):
                _probe_results[key] = None
            else:
                signal = -proc.returncode if proc.returncode < 0 else None
                last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                what = f"died with signal {signal}" if signal else f"exited {proc.returncode}"
                hint = (
                    " (Illegal instruction: rebuild with `make llama-cpp`)" if signal == 4 else ""
                )
                _probe_results[key] = f"llama.cpp {what} evaluating a GGUF{hint}: {last}"
    return _probe_results[key]


@contextmanager
def native_output_to(log_path: Path) -> Iterator[None]:
    """Send what native code writes to stdout/stderr (fds 1 and 2) into `log_path`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _llama_cpp() -> Any:
    return importlib.import_module("llama_cpp")


@contextmanager
def llama_warnings_quiet() -> Iterator[None]:
    """Keep llama.cpp's warnings off stderr for one call; its failures reach us as results.

    llama-cpp-python's table of ggml log levels predates ggml's DEBUG level, so it reads each
    level one step too high: a WARN prints as an ERROR even with verbose=False. Loading a LoRA
    on a quantized base warns once per tensor that the adapter cannot use the CPU repack
    buffer and takes the plain CPU one, as llama.cpp intends: 11 lines per load in `make demo`.
    """
    logger = logging.getLogger("llama-cpp-python")  # the logger its callback consults
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


def quantize(source_gguf: Path, out_path: Path, quantization: str) -> GGUFFile | Skipped:
    """Requantize an F16/F32 GGUF with llama.cpp's quantizer, or say why it was skipped."""
    quantization = quantization.upper()
    if quantization not in FTYPES:
        raise ValueError(f"llama.cpp quantization {quantization!r} unknown; use {list(FTYPES)}")
    reason = llama_cpp_missing_reason()
    if reason is not None:
        return Skipped(quantization, reason)
    source_gguf, out_path = Path(source_gguf), Path(out_path)
    if not source_gguf.is_file():
        raise FileNotFoundError(f"GGUF {source_gguf} does not exist")
    lib = _llama_cpp()
    params = lib.llama_model_quantize_default_params()
    params.ftype = FTYPES[quantization]
    params.nthread = os.cpu_count() or 1
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = out_path.with_name(out_path.name + ".partial")
    log_path = out_path.with_name(out_path.name + ".quantize.log")
    with native_output_to(log_path):  # hundreds of per-tensor lines: a log, not the terminal
        status = lib.llama_model_quantize(
            str(source_gguf).encode(), str(tmp_path).encode(), ctypes.byref(params)
        )
    if status != 0:
        tmp_path.unlink(missing_ok=True)
        return Skipped(
            quantization, f"llama_model_quantize failed with status {status} (log: {log_path})"
        )
    os.replace(tmp_path, out_path)
    return describe(out_path, quantization)


def quantize_q4_k_m(f16_gguf: Path, out_path: Path) -> GGUFFile | Skipped:
    """Q4_K_M, the type phones usually run (kept for callers of the earlier API)."""
    return quantize(f16_gguf, out_path, "Q4_K_M")


class LlamaCppModel:
    """One GGUF loaded in llama.cpp: tokenize, detokenize, logits, chat template, generate."""

    def __init__(self, gguf_path: Path, n_ctx: int = 512, *, vocab_only: bool = False) -> None:
        reason = llama_cpp_crash_reason(Path(gguf_path))
        if reason is not None:
            raise LlamaCppUnavailable(reason)
        self.lib = _llama_cpp()
        self.llm = self.lib.Llama(
            model_path=str(gguf_path),
            n_ctx=n_ctx,
            n_batch=n_ctx,
            n_threads=max(1, min(4, os.cpu_count() or 1)),
            logits_all=not vocab_only,
            vocab_only=vocab_only,
            verbose=False,
            seed=0,
        )

    @property
    def metadata(self) -> dict[str, str]:
        """The file's GGUF key/values as llama.cpp reads them (arrays left out)."""
        return dict(self.llm.metadata)

    def tokenize(self, text: str, *, add_bos: bool = False, special: bool = False) -> list[int]:
        """llama.cpp's token ids for `text`."""
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special))

    def detokenize(self, ids: Sequence[int]) -> str:
        """The whole-string text llama.cpp gives back for `ids`."""
        return self.llm.detokenize(list(ids)).decode("utf-8", errors="replace")

    def logits(self, ids: Sequence[int]) -> Any:
        """Next-token logits at every position of `ids` (numpy, len(ids) × vocab)."""
        self.llm.reset()
        self.llm.eval(list(ids))
        return self.llm.scores[: len(ids)].copy()

    def generate(self, prompt: str, max_tokens: int = 8) -> tuple[int, str]:
        """Greedy completion: (tokens generated, text)."""
        self.llm.reset()
        out = self.llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0)
        return int(out["usage"]["completion_tokens"]), out["choices"][0]["text"]

    def apply_chat_template(self, messages: Sequence[dict[str, str]], add_generation: bool) -> str:
        """The prompt llama.cpp's own template engine renders from the file's chat template."""
        lib = self.lib
        template = lib.llama_model_chat_template(self.llm.model, None)
        if not template:
            raise ValueError("the GGUF file has no tokenizer.chat_template")
        keep = [(m["role"].encode(), m["content"].encode()) for m in messages]
        chat = (lib.llama_chat_message * len(keep))(
            *[lib.llama_chat_message(role=r, content=c) for r, c in keep]
        )
        size = 4096 + sum(len(c) for _, c in keep) * 2
        buf = ctypes.create_string_buffer(size)
        n = lib.llama_chat_apply_template(template, chat, len(keep), add_generation, buf, size)
        if n < 0:
            raise ValueError("llama.cpp does not recognise this chat template")
        return buf.raw[:n].decode("utf-8")

    def close(self) -> None:
        """Free the native model now rather than at garbage collection."""
        self.llm.close()


def llama_cpp_generate(gguf_path: Path, prompt: str, max_tokens: int = 8) -> tuple[int, str]:
    """Load a GGUF in llama.cpp and greedily generate a few tokens: (tokens generated, text)."""
    model = LlamaCppModel(Path(gguf_path), n_ctx=256)
    try:
        return model.generate(prompt, max_tokens)
    finally:
        model.close()
