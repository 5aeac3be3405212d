"""The installed llama.cpp build is portable by construction: its machine code uses AVX2 but no AVX-512 and
no AMX instruction, so it runs on every x86-64 CPU with AVX2 whatever CPU compiled it (the AMX path died
with a general protection fault at ``ldtilecfg`` on cloud CPUs that advertise AMX)."""

from __future__ import annotations

import importlib.util
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ragdeck.services.llama_local import build_features, non_portable_features

AMX = re.compile(r"\b(ldtilecfg|sttilecfg|tileloadd\w*|tilestored|tilezero|tilerelease|tdp\w+)\b")
# AVX-512: zmm registers, opmask registers as write masks, or the upper 16 xmm/ymm registers (EVEX only)
AVX512 = re.compile(r"%zmm\d+|\{%k[0-7]\}|%[xy]mm(1[6-9]|2[0-9]|3[01])\b")
AVX2 = re.compile(r"%ymm\d+")


def llama_libraries() -> list[Path]:
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        if os.environ.get("RAGDECK_REQUIRE_LLM") == "1":
            pytest.fail("llama-cpp-python is not installed (RAGDECK_REQUIRE_LLM=1)")
        pytest.skip("llama-cpp-python is not installed")
    lib = Path(spec.origin).parent / "lib"
    return sorted(p for p in lib.glob("lib*.so*") if p.is_file() and not p.is_symlink())


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 instruction sets")
@pytest.mark.skipif(
    bool(os.environ.get("RAGDECK_LLAMA_CMAKE_ARGS")), reason="a build with the user's own flags"
)
def test_the_installed_llama_cpp_has_no_amx_or_avx512_code() -> None:
    libraries = llama_libraries()
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("objdump (binutils) is not installed")
    assert any(p.name.startswith("libggml-cpu") for p in libraries), libraries
    avx2 = 0
    for library in libraries:
        code = subprocess.run(
            [objdump, "-d", "--no-show-raw-insn", str(library)],
            capture_output=True, text=True, check=True, timeout=300,
        ).stdout  # fmt: skip
        amx = sorted(set(AMX.findall(code)))
        assert not amx, f"{library.name} has AMX instructions {amx}: rebuild it (docs/local-llm-build.md)"
        wide = AVX512.search(code)
        assert wide is None, f"{library.name} has AVX-512 code ({wide.group(0)}): rebuild it"
        avx2 += len(AVX2.findall(code))
    assert avx2 > 1000, "no AVX2 code found: the disassembly did not work, or the build is not optimised"
    features = build_features()
    assert "AVX2 = 1" in features and non_portable_features(features) == [], features
