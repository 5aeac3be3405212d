"""The in-process embedder's runtimes (``RAGDECK_EMBED_BACKEND``): auto (the default) on ONNX Runtime where it
can run the model and on torch, saying why, where it cannot; onnx and torch forced; the shared export cache;
ONNX Runtime's vectors against torch's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ragdeck.console.settings import Settings
from ragdeck.console.wiring import build_embedder
from ragdeck.errors import ConfigError
from ragdeck.services.embedders import LocalEmbedder, packaged_model_path
from ragdeck.services.onnx_embedder import _max_seq_length, _tokenizer, default_cache_dir

TEXTS = [
    "How do I enforce TLS for connections to Prometheus?",
    "A gauge starts at 0; a client library may offer a way to start it at another number.",
    "short",
    "The Pushgateway becomes a single point of failure. " * 40,  # past 256 tokens: truncated alike
]


def test_backend_settings_reach_the_embedder(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().embed_backend == "auto"  # ONNX Runtime where it can run the model
    embedder = build_embedder(Settings())
    assert isinstance(embedder, LocalEmbedder)
    assert (embedder.backend, embedder.onnx_dir, embedder.runtime) == ("auto", None, None)  # nothing loaded
    monkeypatch.setenv("RAGDECK_EMBED_BACKEND", "onnx")
    monkeypatch.setenv("RAGDECK_EMBED_ONNX_DIR", str(data_dir / "exports"))
    embedder = build_embedder(Settings())
    assert (embedder.backend, embedder.onnx_dir) == ("onnx", data_dir / "exports")  # type: ignore[union-attr]
    monkeypatch.setenv("RAGDECK_EMBED_BACKEND", "openvino")
    with pytest.raises(ConfigError, match=r"embed_backend \(RAGDECK_EMBED_BACKEND\)"):
        Settings()


def test_the_export_cache_is_the_users_shared_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "ragdeck" / "onnx"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "ragdeck" / "onnx"


def test_onnx_backend_is_cpu_only_and_auto_elsewhere_is_torch(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="RAGDECK_EMBED_DEVICE=cpu"):
        LocalEmbedder(device="cuda", backend="onnx", onnx_dir=tmp_path)
    assert LocalEmbedder(device="cuda", backend="auto").backend == "torch"
    with pytest.raises(ConfigError, match="auto, torch or onnx"):
        LocalEmbedder(backend="tensorrt")


@pytest.mark.slow
def test_without_onnxruntime_onnx_says_what_to_install_and_auto_runs_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    embedder = LocalEmbedder(backend="onnx", onnx_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"pip install ragdeck"):
        embedder.embed_query("anything")
    auto = LocalEmbedder(onnx_dir=tmp_path)
    assert auto.embed_query("anything").shape == (384,)
    assert auto.runtime == "torch" and "onnxruntime" in str(auto.onnx_fallback)
    health = auto.health()
    assert health.ok and "(torch; not ONNX Runtime:" in health.detail
    assert health.version is not None and health.version.startswith("sentence-transformers")
    assert not any(tmp_path.iterdir())  # nothing exported


@pytest.mark.slow
def test_auto_runs_a_model_onnx_cannot_export_on_torch_and_says_why(tmp_path: Path) -> None:
    """A model with CLS pooling (as many a user brings): the ONNX export rebuilds mean pooling only, so auto
    runs it on torch, with the reason on the Stack page; the explicit onnx backend refuses it."""
    packaged = packaged_model_path()
    model = tmp_path / "cls-model"
    (model / "1_Pooling").mkdir(parents=True)
    for file in packaged.iterdir():
        if file.is_file():
            (model / file.name).symlink_to(file)
    pooling = json.loads((packaged / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (model / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    auto = LocalEmbedder(str(model), onnx_dir=tmp_path / "cache")
    vector = auto.embed_query(TEXTS[0])
    assert auto.runtime == "torch" and "mean pooling" in str(auto.onnx_fallback)
    assert "not ONNX Runtime: The ONNX backend exports Transformer + mean pooling" in auto.health().detail
    torch_only = LocalEmbedder(str(model), backend="torch")
    np.testing.assert_allclose(vector, torch_only.embed_query(TEXTS[0]), atol=1e-6)
    with pytest.raises(ConfigError, match="mean pooling models only"):
        LocalEmbedder(str(model), backend="onnx", onnx_dir=tmp_path / "cache").embed_query("x")


def test_the_onnx_tokenizer_gives_transformers_inputs() -> None:
    """The ONNX embedder tokenizes with the ``tokenizers`` library (no torch import); its inputs equal
    transformers' fast tokenizer's as sentence-transformers calls it: padded, cut at 256 tokens."""
    from transformers import AutoTokenizer

    model = packaged_model_path()
    texts = [*TEXTS, "", "Ünïcödé façade — naïve café 東京", "tabs\tand\nnew lines", "x " * 600]
    ours = _tokenizer(model, _max_seq_length(model))(texts)
    want = AutoTokenizer.from_pretrained(str(model), local_files_only=True)(
        texts, padding=True, truncation="longest_first", max_length=256, return_tensors="np"
    )
    assert _max_seq_length(model) == 256 and ours["input_ids"].shape[1] == 256
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(ours[name], want[name])


@pytest.mark.slow
def test_onnx_vectors_match_torch(tmp_path: Path) -> None:
    onnx = LocalEmbedder(backend="onnx", onnx_dir=tmp_path)
    got, want = onnx.embed_documents(TEXTS), LocalEmbedder(backend="torch").embed_documents(TEXTS)
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
