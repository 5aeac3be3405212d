"""A sentence-transformers model run by ONNX Runtime: the default in-process embedder where it can run the
model (``RAGDECK_EMBED_BACKEND=auto``; ``onnx`` insists, ``torch`` opts out).

sentence-transformers' own ``backend="onnx"`` goes through optimum-onnx, which needs transformers < 4.58 (ours
is 5.x), so the export is done here: the model's transformer (eager attention, so ONNX Runtime's BERT fusions
apply) with mean pooling in the graph, exported once by ``torch.onnx.export``, fused by ONNX Runtime's
transformer optimizer at ``opt_level=0`` (graph rewrites only: Attention, SkipLayerNormalization, BiasGelu,
contrib ops every CPU build of ONNX Runtime has; nothing chosen for the CPU that exports it), and cached in a
directory keyed by the model files and the versions that made the file (``default_cache_dir``: one per user,
shared by every data directory). ONNX Runtime's CPU-specific optimisations happen when a session loads and
are never saved. Tokenisation, truncation, longest-first batching and L2 normalisation match
sentence-transformers' ``encode``. fp32 only: int8 changed the demo rankings (bench/README.md, "ONNX").
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragdeck.errors import ConfigError
from ragdeck.services.common import installed_version

ONNX_FILE = "model.onnx"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_INSTALL = "reinstall ragdeck (`pip install ragdeck` brings onnxruntime and onnx)"
# What an export depends on besides the model: a file made by other versions is made again.
_EXPORT_VERSIONS = ("onnxruntime", "onnx", "torch", "transformers")


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/ragdeck/onnx``, else ``~/.cache/ragdeck/onnx``; a temporary directory's
    ``ragdeck-onnx`` where the home directory cannot be found."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no HOME and no password entry
            base = tempfile.gettempdir()
    return Path(base) / "ragdeck" / "onnx"


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
    """Hex digest of the model directory's path and top-level files (name, size, mtime) and of the versions
    of the libraries that export and run it: a changed model or library exports again."""
    digest = hashlib.sha256(str(model_dir.resolve()).encode())
    for file in sorted(p for p in model_dir.iterdir() if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    for name in _EXPORT_VERSIONS:
        digest.update(f"{name}=={installed_version(name)}\n".encode())
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
    # the exporter's deprecation and tracer warnings are about its internals, not something a user can act on
    with tempfile.TemporaryDirectory(dir=target.parent) as work, warnings.catch_warnings():
        warnings.simplefilter("ignore")
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


def _max_seq_length(model_dir: Path) -> int:
    """sentence-transformers' input length: ``max_seq_length`` of sentence_bert_config.json, else the
    tokenizer's ``model_max_length``, else 512."""
    for name, key in (
        ("sentence_bert_config.json", "max_seq_length"),
        ("tokenizer_config.json", "model_max_length"),
    ):
        try:
            value = json.loads((model_dir / name).read_text()).get(key)
        except (OSError, ValueError):
            continue
        if isinstance(value, int) and 0 < value < 1_000_000:
            return value
    return 512


def _tokenizer(model_dir: Path, max_length: int) -> Callable[[list[str]], dict[str, np.ndarray]]:
    """Texts to the model's int64 inputs, padded to the longest and cut at ``max_length`` tokens (specials
    included) as transformers' fast tokenizer does: the ``tokenizers`` library on the model's
    tokenizer.json (no torch or transformers import: a second or so less at start), else transformers'
    AutoTokenizer for a model saved without one."""
    path = model_dir / "tokenizer.json"
    if not path.is_file():
        from transformers import AutoTokenizer

        slow = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)

        def with_transformers(texts: list[str]) -> dict[str, np.ndarray]:
            found = slow(
                texts, padding=True, truncation="longest_first", max_length=max_length, return_tensors="np"
            )
            return {name: np.asarray(found[name], dtype=np.int64) for name in _INPUTS if name in found}

        return with_transformers
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    padding = tokenizer.padding or {}
    tokenizer.enable_truncation(max_length=max_length, strategy="longest_first")
    tokenizer.enable_padding(
        pad_id=int(padding.get("pad_id", 0)),
        pad_type_id=int(padding.get("pad_type_id", 0)),
        pad_token=str(padding.get("pad_token", "[PAD]")),
    )

    def with_tokenizers(texts: list[str]) -> dict[str, np.ndarray]:
        encoded = tokenizer.encode_batch(texts)
        return {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }

    return with_tokenizers


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
        self.onnx_path = onnx_file or cache_root / f"{model_dir.name}-{cache_key(model_dir)}" / ONNX_FILE
        if not self.onnx_path.is_file():
            export_onnx(model_dir, self.onnx_path)
        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(self.onnx_path), options, providers=["CPUExecutionProvider"])
        self.max_seq_length = _max_seq_length(model_dir)
        self._tokenize = _tokenizer(model_dir, self.max_seq_length)
        self._inputs = [i.name for i in self.session.get_inputs()]
        self._dimension = int(self.session.get_outputs()[0].shape[-1])

    def get_sentence_embedding_dimension(self) -> int:
        return self._dimension

    def encode(self, sentences: str | Sequence[str], batch_size: int = 32, **_: Any) -> np.ndarray:
        """L2-normalised float32 vectors (one vector for one string); batches formed longest text first, as
        sentence-transformers does."""
        if isinstance(sentences, str):
            return self.encode([sentences], batch_size)[0]
        order = sorted(range(len(sentences)), key=lambda i: -len(sentences[i]))
        out = np.zeros((len(sentences), self._dimension), dtype=np.float32)
        for begin in range(0, len(order), batch_size):
            batch = order[begin : begin + batch_size]
            tokens = self._tokenize([sentences[i] for i in batch])
            feed = {name: tokens[name] for name in self._inputs}
            vectors = np.asarray(self.session.run(None, feed)[0], dtype=np.float32)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            out[batch] = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        return out
