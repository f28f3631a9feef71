"""MNIST: a tfds-first loader with a verified offline fallback, and the paper's MNIST MLP / ConvNet problems.

Loading (`load_mnist`):

* "tfds" — `tfds.load("mnist")`: 60,000 train / 10,000 test images. The primary path.
* "idx" — the official MNIST *test* split read from a local directory of IDX files (byte-identical to tfds's
  download), MD5-verified, split 8,000 / 2,000 into train / eval with a fixed permutation. For machines without
  internet. The directory is the `offline_dir` argument, else `$LOPT_MNIST_DIR`, else `<repo>/../shared/data/mnist`.
* "auto" (default) — tfds, and if tfds cannot provide the data (no network, missing dependency…) the IDX
  directory, with a warning (`warnings.warn` and the log); the returned `MnistData.source` says which was used. Random data is never
  substituted: if neither source works, it raises.

Problems (the MNIST entries of the original `problems/problem_sets.py` `test_problems()`, which could not run
there: docs/differences_from_original.md#mnist; batch 64, logits + mean softmax cross-entropy, pixels scaled
to [0, 1]):

* MLP 784 → 64 → 10; weights N(0, 2/fan_in), biases 0.1·N(0, 1);
* ConvNet conv 3×3×8 → conv 5×5×8 (SAME, stride 1, no pooling) → affine 6272 → 10, all weights N(0, 0.01²);
  each with relu or sigmoid activations.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import logging
import os
import pathlib
import warnings

import keras
import numpy as np

from problems.base import derive_seed
from problems.keras_problem import KerasProblem

log = logging.getLogger(__name__)

MNIST_DIR_ENV = "LOPT_MNIST_DIR"
IMAGES_FILE = "t10k-images-idx3-ubyte.gz"
LABELS_FILE = "t10k-labels-idx1-ubyte.gz"
# Official md5 sums of the MNIST test files (the same as the data directory's MD5SUMS).
OFFICIAL_MD5 = {IMAGES_FILE: "9fb629c4189551a2d022fa330f9573f3", LABELS_FILE: "ec29112dd5afa0611ce80d1b7f02629c"}
OFFLINE_TRAIN_SIZE = 8000


class MnistChecksumError(ValueError):
    """A local MNIST file does not have its official checksum (corrupted or a different file)."""


@dataclasses.dataclass(frozen=True, eq=False)
class MnistData:
    """uint8 images (N, 28, 28, 1) and int32 labels (N,) for train and eval, and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray
    source: str


def default_mnist_dir() -> pathlib.Path:
    """`$LOPT_MNIST_DIR`, else `<repo>/../shared/data/mnist` (repo = the directory holding `problems/`)."""
    if os.environ.get(MNIST_DIR_ENV):
        return pathlib.Path(os.environ[MNIST_DIR_ENV])
    return pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


def _md5(path: pathlib.Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def verify_checksums(directory: pathlib.Path) -> None:
    """Check both files against the official md5 sums (and against the directory's MD5SUMS if present)."""
    listed = {}
    sums_file = directory / "MD5SUMS"
    if sums_file.exists():
        for line in sums_file.read_text().splitlines():
            if line.strip():
                digest, name = line.split()
                listed[name.lstrip("*")] = digest
    for name, official in OFFICIAL_MD5.items():
        if listed.get(name, official) != official:
            raise MnistChecksumError(f"{sums_file} lists {listed[name]} for {name}, not the official {official}")
        actual = _md5(directory / name)
        if actual != official:
            raise MnistChecksumError(f"{directory / name}: md5 {actual} != official {official} (corrupted file?)")


def parse_idx(data: bytes, expected_magic: int) -> np.ndarray:
    """Parse an (uncompressed) IDX file: big-endian magic 0x0000_08_<ndim>, ndim big-endian int32 sizes, uint8."""
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise ValueError(f"IDX magic {magic:#x}, expected {expected_magic:#x}")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"IDX body has {body.size} bytes, header says {dims}")
    return body.reshape(dims)


def read_idx_test_split(directory=None, verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 official MNIST test images (10000, 28, 28) uint8 and labels (10000,) uint8."""
    directory = pathlib.Path(directory) if directory is not None else default_mnist_dir()
    if verify:
        verify_checksums(directory)
    images = parse_idx(gzip.decompress((directory / IMAGES_FILE).read_bytes()), 0x803)
    labels = parse_idx(gzip.decompress((directory / LABELS_FILE).read_bytes()), 0x801)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels


def _load_idx(directory, split_seed: int) -> MnistData:
    images, labels = read_idx_test_split(directory)
    order = np.random.default_rng(split_seed).permutation(images.shape[0])
    train, evaluation = order[:OFFLINE_TRAIN_SIZE], order[OFFLINE_TRAIN_SIZE:]
    x, y = images[..., None], labels.astype(np.int32)
    where = directory if directory is not None else default_mnist_dir()
    return MnistData(x[train], y[train], x[evaluation], y[evaluation], source=f"idx:{where}")


def _load_tfds(data_dir) -> MnistData:
    import tensorflow_datasets as tfds

    def to_numpy(ds):
        # Batches of 10,000 rather than batch_size=-1, which tfds's mock data (used in tests) cannot handle.
        batches = list(tfds.as_numpy(ds.batch(10000)))
        return (np.concatenate([x for x, _ in batches]).astype(np.uint8),
                np.concatenate([y for _, y in batches]).astype(np.int32))

    train, test = tfds.load("mnist", split=["train", "test"], as_supervised=True, data_dir=data_dir, try_gcs=False)
    return MnistData(*to_numpy(train), *to_numpy(test), source="tfds")


def load_mnist(source: str = "auto", offline_dir=None, tfds_data_dir=None, split_seed: int = 0) -> MnistData:
    """Load MNIST from `source` ("auto", "tfds" or "idx"); see the module docstring."""
    if source == "tfds":
        return _load_tfds(tfds_data_dir)
    if source == "idx":
        return _load_idx(offline_dir, split_seed)
    if source != "auto":
        raise ValueError(f"unknown MNIST source {source!r}")
    try:
        return _load_tfds(tfds_data_dir)
    except Exception as error:  # tfds raises many types when it cannot download; the fallback is announced
        message = (f"tfds could not load mnist ({type(error).__name__}: {str(error)[:200]}); using the offline "
                   "IDX test split instead (8,000 train / 2,000 eval images, not the 60,000-image training set)")
        log.warning(message)
        warnings.warn(message, stacklevel=2)
        return _load_idx(offline_dir, split_seed)


# --- models -----------------------------------------------------------------------------------------------------
def build_mnist_mlp(activation: str = "relu", hidden: int = 64, seed: int = 0) -> keras.Model:
    """784 → hidden → 10 logits; weights N(0, 2/fan_in), biases 0.1·N(0, 1)."""
    def dense(units, act, k):
        return keras.layers.Dense(
            units, activation=act,
            kernel_initializer=keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal",
                                                                  seed=derive_seed(seed, k)),
            bias_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=derive_seed(seed, k, 1)))

    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), dense(hidden, activation, 0),
                             dense(10, None, 1)], name=f"mnist_mlp_{activation}")


def build_mnist_convnet(activation: str = "relu", seed: int = 0) -> keras.Model:
    """conv 3×3×8 → conv 5×5×8 (SAME, stride 1, no pooling) → affine 6272 → 10 logits; all weights N(0, 0.01²)."""
    def init(k):
        return keras.initializers.RandomNormal(stddev=0.01, seed=derive_seed(seed, k))

    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(8, 3, padding="same", activation=activation, kernel_initializer=init(0),
                            bias_initializer=init(1)),
        keras.layers.Conv2D(8, 5, padding="same", activation=activation, kernel_initializer=init(2),
                            bias_initializer=init(3)),
        keras.layers.Flatten(),
        keras.layers.Dense(10, kernel_initializer=init(4), bias_initializer=init(5)),
    ], name=f"mnist_convnet_{activation}")


def _problem(kind, builder, activation, data, batch_size, objective_examples) -> KerasProblem:
    if activation not in ("relu", "sigmoid"):
        raise ValueError(f"activation must be relu or sigmoid, got {activation!r}")
    data = load_mnist() if data is None else data
    return KerasProblem(
        f"mnist_{kind}_{activation}", functools.partial(builder, activation), data.x_train, data.y_train,
        batch_size, x_eval=data.x_eval, y_eval=data.y_eval, objective_examples=objective_examples, family="mnist")


def mnist_mlp_problem(activation: str = "relu", data: MnistData | None = None, batch_size: int = 64,
                      objective_examples: int | None = None) -> KerasProblem:
    return _problem("mlp", build_mnist_mlp, activation, data, batch_size, objective_examples)


def mnist_convnet_problem(activation: str = "relu", data: MnistData | None = None, batch_size: int = 64,
                          objective_examples: int | None = None) -> KerasProblem:
    return _problem("convnet", build_mnist_convnet, activation, data, batch_size, objective_examples)
