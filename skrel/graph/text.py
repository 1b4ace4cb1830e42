"""Offline text embedders for text columns of node tables.

A text embedder is any callable ``embedder(list_of_str) -> torch.Tensor`` of shape ``(n, dim)``
(pytorch-frame's ``TextEmbedderConfig`` protocol). It must be deterministic: the same strings give
the same vectors, in every process. Give it a ``cache_key`` attribute (a string naming the model
and its settings) so that materialised features can be cached per database; otherwise its
``repr`` is used.

Nothing here downloads anything: the default is :class:`HashingTextEmbedder` (feature hashing of
character n-grams). To use a pretrained model, load it from a local path yourself and wrap it::

    model = SentenceTransformer("/models/all-MiniLM-L6-v2")   # a local folder, no download
    embedder = CallableTextEmbedder(lambda s: torch.from_numpy(model.encode(s)), "minilm-l6")
"""

from __future__ import annotations

import numpy as np

__all__ = ["HashingTextEmbedder", "CallableTextEmbedder", "embedder_key"]


class HashingTextEmbedder:
    """Feature hashing of character n-grams, L2-normalised: fast, offline, deterministic.

    Parameters
    ----------
    dim : int, default=32
        Output dimension (number of hash buckets).
    ngram_range : tuple of int, default=(2, 4)
        Character n-gram lengths (within word boundaries).
    lowercase : bool, default=True

    Examples
    --------
    >>> emb = HashingTextEmbedder(dim=8)
    >>> emb(["Lewis Hamilton", "Nick Heidfeld"]).shape
    torch.Size([2, 8])
    """

    def __init__(self, dim: int = 32, ngram_range: tuple[int, int] = (2, 4), lowercase: bool = True):
        self.dim = int(dim)
        self.ngram_range = tuple(ngram_range)
        self.lowercase = bool(lowercase)

    @property
    def cache_key(self) -> str:
        return f"hashing(dim={self.dim},ngram={self.ngram_range},lower={self.lowercase})"

    def __repr__(self) -> str:
        return f"HashingTextEmbedder(dim={self.dim}, ngram_range={self.ngram_range}, lowercase={self.lowercase})"

    def __call__(self, texts: list[str]):
        import torch
        from sklearn.feature_extraction.text import HashingVectorizer

        vec = HashingVectorizer(
            analyzer="char_wb",
            ngram_range=self.ngram_range,
            n_features=self.dim,
            lowercase=self.lowercase,
            alternate_sign=True,
            norm="l2",
        )
        texts = ["" if t is None else str(t) for t in texts]
        out = vec.transform(texts).toarray().astype(np.float32)
        return torch.from_numpy(out)


class CallableTextEmbedder:
    """Wrap any ``list[str] -> Tensor`` function with the cache key that names it.

    Parameters
    ----------
    fn : callable
        ``fn(list_of_str) -> torch.Tensor`` of shape ``(n, dim)``, deterministic.
    cache_key : str
        A name for the model and its settings (used in cache keys).
    """

    def __init__(self, fn, cache_key: str):
        self.fn = fn
        self.cache_key = str(cache_key)

    def __call__(self, texts: list[str]):
        return self.fn(list(texts))

    def __repr__(self) -> str:
        return f"CallableTextEmbedder({self.cache_key!r})"


def embedder_key(embedder) -> str:
    """The cache key of an embedder: its ``cache_key`` attribute, else its ``repr``."""
    key = getattr(embedder, "cache_key", None)
    return str(key) if key is not None else repr(embedder)
