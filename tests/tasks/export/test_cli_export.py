"""`distillery export`: files written, one line per file, clear one-line errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cli.main import main
from tasks.export import llama_cpp_missing_reason
from tasks.export.llama_cpp_build import cmake_args, cpu_flags


def test_help_lists_defaults_and_quantizations(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Q4_K_M" in text and "PHONE" in text and "Q4_0" in text
    assert "[default: F16 Q8_0 Q4_K_M]" in text


def test_export_prints_name_quantization_size_sha256_and_parity(
    llama_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quants = ["F16"] if llama_cpp_missing_reason() else ["F16", "Q4_K_M"]
    code = main(
        ["export", str(llama_dir), "--out", str(tmp_path), "--name", "s", "--quant", *quants]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    for quant in quants:
        path = tmp_path / "gguf" / f"s-{quant}.gguf"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        [line] = [x for x in out.splitlines() if x.startswith(f"s-{quant}.gguf")]
        assert f" {quant} " in line and "%" in line and digest[:16] in line
        assert f"sha256 {digest}" in out


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a HF model folder" in err and len(err.splitlines()) == 1
    assert main(["export", str(tmp_path), "--base", "no-such-preset", "--out", str(tmp_path)]) == 2
    assert "--base 'no-such-preset'" in capsys.readouterr().err
    assert main(["export", str(tmp_path), "--out", str(tmp_path), "--quant", "Q3_X"]) == 2
    assert "unknown quantization Q3_X" in capsys.readouterr().err


def test_build_flags_follow_cpuinfo_and_keep_amx_off(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor: 0\nflags\t\t: fpu sse2 avx avx2 fma f16c amx_tile avx512f\n")
    args, key = cmake_args(cpu_flags(info))
    assert key == "avx2-fma-f16c-avx512f"
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_AVX512=ON" in args
    assert "-DGGML_AMX_TILE=OFF" in args and "-DGGML_AVX512_VNNI=OFF" in args
    assert "march=native" not in args
    assert cpu_flags(tmp_path / "missing") == set()
