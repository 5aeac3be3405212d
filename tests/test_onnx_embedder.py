"""The opt-in ONNX Runtime embed backend (``RAGDECK_EMBED_BACKEND=onnx``): its settings and errors everywhere;
its vectors against torch's where onnxruntime is installed (the ``onnx`` extra), skipped cleanly elsewhere."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_embedder
from ragdeck.errors import ConfigError
from ragdeck.services.embedders import LocalEmbedder

TEXTS = [
    "How do I enforce TLS for connections to Prometheus?",
    "A gauge starts at 0; a client library may offer a way to start it at another number.",
    "short",
    "The Pushgateway becomes a single point of failure. " * 40,  # past 256 tokens: truncated alike
]


def test_backend_settings_reach_the_embedder(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().embed_backend == "torch"  # the default stays torch
    monkeypatch.setenv("RAGDECK_EMBED_BACKEND", "onnx")
    embedder = build_embedder(Settings())
    assert isinstance(embedder, LocalEmbedder)
    assert (embedder.backend, embedder.onnx_dir) == ("onnx", data_dir / "onnx")
    monkeypatch.setenv("RAGDECK_EMBED_ONNX_DIR", str(data_dir / "exports"))
    assert build_embedder(Settings()).onnx_dir == data_dir / "exports"  # type: ignore[union-attr]
    monkeypatch.setenv("RAGDECK_EMBED_BACKEND", "openvino")
    with pytest.raises(ConfigError, match=r"embed_backend \(RAGDECK_EMBED_BACKEND\)"):
        Settings()


def test_onnx_backend_is_cpu_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="RAGDECK_EMBED_DEVICE=cpu"):
        LocalEmbedder(device="cuda", backend="onnx", onnx_dir=tmp_path)
    with pytest.raises(ConfigError, match="torch or onnx"):
        LocalEmbedder(backend="tensorrt")


def test_missing_onnxruntime_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    embedder = LocalEmbedder(backend="onnx", onnx_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"pip install 'ragdeck\[onnx\]'"):
        embedder.embed_query("anything")
    assert not any(tmp_path.iterdir())  # nothing exported


@pytest.mark.slow
def test_onnx_vectors_match_torch(tmp_path: Path, local_embedder: LocalEmbedder) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    onnx = LocalEmbedder(backend="onnx", onnx_dir=tmp_path)
    got, want = onnx.embed_documents(TEXTS), local_embedder.embed_documents(TEXTS)
    assert got.dtype == np.float32 and got.shape == want.shape == (len(TEXTS), 384)
    assert onnx.dimension == 384
    assert np.abs(got - want).max() < 1e-4
    assert np.sum(got * want, axis=1).min() > 0.9999
    np.testing.assert_allclose(onnx.embed_query(TEXTS[0]), want[0], atol=1e-4)
    exported = list(tmp_path.glob("*/model.onnx"))
    assert len(exported) == 1  # one export, in the cache directory given
    stamp = exported[0].stat().st_mtime_ns
    again = LocalEmbedder(backend="onnx", onnx_dir=tmp_path)
    np.testing.assert_allclose(again.embed_documents(TEXTS[:2]), got[:2], atol=1e-6)
    assert exported[0].stat().st_mtime_ns == stamp  # the second load reused the export
