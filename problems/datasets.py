"""Synthetic classification datasets, generated from an explicit seed with numpy (no sklearn, no global RNG)."""

from __future__ import annotations

import numpy as np


def make_classification(
    n_samples: int, n_features: int, n_classes: int, class_sep: float, seed: int,
    clusters_per_class: int = 2, flip_y: float = 0.01,
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters on the vertices of a hypercube, as sklearn's `make_classification` with only informative
    features (the original used it with n_informative = n_features, n_redundant = 0).

    Each class gets `clusters_per_class` clusters centred on distinct hypercube vertices (±class_sep per
    coordinate), each cluster with a random linear covariance; a fraction `flip_y` of labels is randomised.
    Returns float32 features (n_samples, n_features) and int32 labels (n_samples,).
    """
    rng = np.random.default_rng(seed)
    n_clusters = n_classes * clusters_per_class
    vertices = set()
    while len(vertices) < n_clusters:  # distinct vertices; terminates since 2**n_features >= n_clusters
        vertices.add(tuple(rng.integers(0, 2, n_features)))
    centroids = (2.0 * np.array(sorted(vertices), dtype=np.float64) - 1.0) * class_sep
    centroids = centroids[rng.permutation(n_clusters)]
    cluster = np.arange(n_samples) % n_clusters
    x = rng.standard_normal((n_samples, n_features))
    for c in range(n_clusters):
        members = cluster == c
        mixing = 2.0 * rng.random((n_features, n_features)) - 1.0
        x[members] = x[members] @ mixing + centroids[c]
    labels = cluster % n_classes
    flip = rng.random(n_samples) < flip_y
    labels[flip] = rng.integers(0, n_classes, int(flip.sum()))
    order = rng.permutation(n_samples)
    return x[order].astype(np.float32), labels[order].astype(np.int32)


def random_mlp_data(
    n_features: int, n_samples: int, seed: int, n_classes: int = 2, depth: int = 6, width: int = 20,
    inputs: str = "gaussian",
) -> tuple[np.ndarray, np.ndarray]:
    """x ~ N(0, 1); labels from a random ReLU MLP (`depth` layers of `width`), as the original `random_mlp`.

    With 2 classes the label is "first output > 0" (the original rule); with k > 2 it is the argmax of k outputs.
    `inputs="image"` draws image-like inputs instead: non-negative and sparse (each entry 0 with probability
    0.8, else uniform in [0, 1]), uncentred like raw pixel intensities; the teacher sees them centred.
    """
    rng = np.random.default_rng(seed)
    if inputs == "gaussian":
        x = rng.standard_normal((n_samples, n_features))
        teacher_x = x
    elif inputs == "image":
        x = _sparse_pixels(rng, (n_samples, n_features))
        teacher_x = _standardise(x)
    else:
        raise ValueError(f"inputs must be 'gaussian' or 'image', not {inputs!r}")
    return x.astype(np.float32), _teacher_labels(teacher_x, rng, n_classes, depth, width)


def _sparse_pixels(rng, shape) -> np.ndarray:
    """Image-like intensities: each entry 0 with probability 0.8, else uniform in [0, 1]."""
    return rng.uniform(0.0, 1.0, shape) * (rng.uniform(size=shape) < 0.2)


def _standardise(x) -> np.ndarray:
    """Each column centred and scaled to unit variance (what a teacher sees of uncentred pixels)."""
    return (x - x.mean(0)) / (x.std(0) + 1e-6)


def _teacher_labels(teacher_x, rng, n_classes: int, depth: int, width: int, balanced: bool = False) -> np.ndarray:
    """Labels of a random ReLU MLP teacher (`depth` layers of `width`) on rows of `teacher_x`; with `balanced`,
    each of the k > 2 outputs is standardised over the data before the argmax, so that no class dominates."""
    h, fan_in = teacher_x, teacher_x.shape[1]
    for _ in range(depth):
        h = np.maximum(h @ (rng.standard_normal((fan_in, width)) / np.sqrt(fan_in)), 0.0)
        fan_in = width
    out = h @ rng.standard_normal((fan_in, max(n_classes, 1)))
    if n_classes == 2:
        # ReLU features are >= 0, so centre the score to get both classes.
        score = out[:, 0] - np.median(out[:, 0])
        labels = (score > 0).astype(np.int32)
    else:
        if balanced:
            out = (out - out.mean(0)) / (out.std(0) + 1e-12)
        labels = np.argmax(out, axis=1).astype(np.int32)
    return labels


def random_image_data(
    size: int, n_samples: int, seed: int, n_classes: int = 10, depth: int = 6, width: int = 20,
) -> tuple[np.ndarray, np.ndarray]:
    """Single-channel `size` x `size` images with spatial structure, labelled by a random ReLU MLP teacher.

    Each image is sparse uniform pixels (as `random_mlp_data`'s image-like inputs) blurred by a 3x3 box filter,
    so neighbouring pixels correlate as in real images and a convolution has local structure to use; intensities
    lie in [0, 1], uncentred like raw pixels. The teacher sees the flattened images centred per pixel, and its
    outputs are standardised before the argmax (unstandardised, one class often takes over 90% of the labels).
    Returns float32 images (n_samples, size, size, 1) and int32 labels (n_samples,).
    """
    rng = np.random.default_rng(seed)
    padded = np.pad(_sparse_pixels(rng, (n_samples, size, size)), ((0, 0), (1, 1), (1, 1)))
    x = sum(padded[:, i:i + size, j:j + size] for i in range(3) for j in range(3)) / 9.0
    x = x / max(float(x.max()), 1e-6)
    labels = _teacher_labels(_standardise(x.reshape(n_samples, -1)), rng, n_classes, depth, width, balanced=True)
    return x[..., None].astype(np.float32), labels
