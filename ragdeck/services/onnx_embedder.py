"""A sentence-transformers model run by ONNX Runtime: ``RAGDECK_EMBED_BACKEND=onnx``, opt-in, extra ``onnx``.

sentence-transformers' own ``backend="onnx"`` goes through optimum-onnx, which needs transformers < 4.58 (ours
is 5.x), so the export is done here: the model's transformer (eager attention, so ONNX Runtime's BERT fusions
apply) with mean pooling in the graph, exported once by ``torch.onnx.export``, fused by ONNX Runtime's
transformer optimizer at ``opt_level=0`` (graph rewrites only: Attention, SkipLayerNormalization, BiasGelu,
contrib ops every CPU build of ONNX Runtime has; nothing chosen for the CPU that exports it), and cached in a
directory keyed by the model files. ONNX Runtime's CPU-specific optimisations happen when a session loads and
are never saved. Tokenisation, truncation, longest-first batching and L2 normalisation match
sentence-transformers' ``encode``. fp32 only: int8 changed the demo rankings (bench/README.md, "ONNX").
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragdeck.errors import ConfigError

ONNX_FILE = "model.onnx"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_INSTALL = "install the extra: `pip install 'ragdeck[onnx]'` (onnxruntime and onnx)"


def require_onnxruntime() -> Any:
    """The ``onnxruntime`` module, or ConfigError naming the extra to install."""
    try:
        import onnx  # noqa: F401  (the export needs it)
        import onnxruntime
    except ImportError as exc:
        raise ConfigError(
            f"RAGDECK_EMBED_BACKEND=onnx needs onnxruntime and onnx ({exc}): {_INSTALL}, "
            "or set RAGDECK_EMBED_BACKEND=torch."
        ) from exc
    return onnxruntime


def _mean_pooling_only(model_dir: Path) -> None:
    """ConfigError unless the model is Transformer + mean Pooling (+ Normalize): what the export rebuilds."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text())
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
        config = json.loads((model_dir / pooling / "config.json").read_text())
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise ConfigError(
            f"{str(model_dir)!r} is not a sentence-transformers model the ONNX backend can export "
            f"({type(exc).__name__}: {exc}); set RAGDECK_EMBED_BACKEND=torch."
        ) from exc
    modes = [k for k, v in config.items() if k.startswith("pooling_mode_") and v]
    if (
        kinds[:2] != ["Transformer", "Pooling"]
        or set(kinds[2:]) - {"Normalize"}
        or modes != ["pooling_mode_mean_tokens"]
    ):
        raise ConfigError(
            f"The ONNX backend exports Transformer + mean pooling models only; {str(model_dir)!r} has "
            f"{kinds} with {modes}. Set RAGDECK_EMBED_BACKEND=torch for it."
        )


def cache_key(model_dir: Path) -> str:
    """Hex digest of the model directory's top-level files (name, size, mtime): a changed model re-exports."""
    digest = hashlib.sha256()
    for file in sorted(p for p in model_dir.iterdir() if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def export_onnx(model_dir: Path, target: Path) -> None:
    """Export ``model_dir`` (transformer + mean pooling, fp32, fused) to ``target``, written atomically."""
    import torch
    from onnxruntime.transformers import optimizer
    from transformers import AutoModel, AutoTokenizer

    class MeanPooled(torch.nn.Module):
        def __init__(self, transformer: torch.nn.Module) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    transformer = AutoModel.from_pretrained(
        str(model_dir), attn_implementation="eager", local_files_only=True
    )
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    sample = tokenizer(
        ["a probe text", "a longer probe text for the export"], padding=True, return_tensors="pt"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        raw = Path(work) / "raw.onnx"
        torch.onnx.export(
            MeanPooled(transformer.eval()),
            tuple(sample[n] for n in _INPUTS),
            str(raw),
            input_names=list(_INPUTS),
            output_names=["sentence_embedding"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in _INPUTS}
            | {"sentence_embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        config = transformer.config
        fused = optimizer.optimize_model(
            str(raw),
            model_type="bert",
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
            opt_level=0,
            use_gpu=False,
        )
        fused.save_model_to_file(str(Path(work) / ONNX_FILE))
        os.replace(Path(work) / ONNX_FILE, target)


class OnnxSentenceModel:
    """The subset of ``SentenceTransformer`` that ``LocalEmbedder`` uses, on ONNX Runtime's CPU provider.

    The ONNX file is ``cache_root/<model dir name>-<cache_key>/model.onnx``, exported on first use (or
    ``onnx_file`` when given, e.g. a quantised one). ``threads``: ONNX Runtime's intra-op threads (None: its
    default, one per core).
    """

    def __init__(
        self, model_dir: Path, cache_root: Path, *, threads: int | None = None, onnx_file: Path | None = None
    ) -> None:
        ort = require_onnxruntime()
        _mean_pooling_only(model_dir)
        from transformers import AutoTokenizer

        self.onnx_path = onnx_file or cache_root / f"{model_dir.name}-{cache_key(model_dir)}" / ONNX_FILE
        if not self.onnx_path.is_file():
            export_onnx(model_dir, self.onnx_path)
        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(self.onnx_path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        config = json.loads((model_dir / "sentence_bert_config.json").read_text())
        self.max_seq_length = int(config.get("max_seq_length") or self.tokenizer.model_max_length)
        self._inputs = [i.name for i in self.session.get_inputs()]
        self._dimension = int(self.session.get_outputs()[0].shape[-1])

    def get_sentence_embedding_dimension(self) -> int:
        return self._dimension

    def encode(self, sentences: Sequence[str], batch_size: int = 32, **_: Any) -> np.ndarray:
        """L2-normalised float32 vectors; batches formed longest text first, as sentence-transformers does."""
        order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
        out = np.zeros((len(sentences), self._dimension), dtype=np.float32)
        for begin in range(0, len(order), batch_size):
            batch = order[begin : begin + batch_size]
            tokens = self.tokenizer(
                [sentences[i] for i in batch],
                padding=True,
                truncation="longest_first",
                max_length=self.max_seq_length,
                return_tensors="np",
            )
            feed = {name: tokens[name].astype(np.int64) for name in self._inputs}
            vectors = np.asarray(self.session.run(None, feed)[0], dtype=np.float32)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            out[batch] = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        return out
