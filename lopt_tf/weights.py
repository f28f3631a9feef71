"""Meta-parameter files: versioned `.npz` with the architecture config inside, checked on load.

Shipped sets live in `lopt_tf/weights/<name>.npz` (package data). A file holds one array per meta-parameter
(`meta/<name>`), the config as JSON (`__config__`), a format version (`__format__`) and optional free-form
JSON info (`__info__`, e.g. meta-steps). `load_weights` also reads a SavedModel written by
`lopt_tf.export_saved_model`.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import os
import zipfile

import numpy as np

from lopt_tf.config import HRNNConfig
from lopt_tf.hrnn import init_meta_numpy, meta_shapes

FORMAT_VERSION = 1
# HRNNConfig fields that a user may set independently of the weights (they do not change the learned function).
RUNTIME_FIELDS = ("init_lr_range", "hold_without_gradient")
# Read only by `init_meta_numpy`: weights made from another initialisation still mean the same thing.
INIT_FIELDS = ("gru_scale", "gru_gate_bias_init", "affine_scale", "readout_scale", "inp_decay_bias_init",
               "scl_decay_bias_init", "lr_momentum_logit_init", "stepsize_offset_init", "shortcut_init_mean",
               "shortcut_init_std")
# The set `LearnedOptimizer()` uses: the "stable" design (bounded learning rate, nominal Adam term with
# bias-corrected momenta, fixed initial step; docs/stable_design.md) meta-trained with PES on long horizons, picked
# by a 10,000-step validation on held-out problems (see weights/TRAINING.md). "stable_v1" (the same meta-parameters
# without the momenta's bias correction), the 2017 design's sets ("hrnn_v4_x0.03", "hrnn_v4", "hrnn_v3") and the
# untrained initialisations ("init", "stable_init") stay available by name.
DEFAULT_WEIGHTS = "stable_v2"


class WeightsError(ValueError):
    """A weight set is missing, corrupt, or made for another architecture."""


def _shipped_dir():
    return importlib.resources.files("lopt_tf").joinpath("weights")


def available_weights() -> list[str]:
    """Names of the weight sets shipped inside the package."""
    return sorted(p.name[:-4] for p in _shipped_dir().iterdir() if p.name.endswith(".npz"))


def save_weights(path: str, meta, config: HRNNConfig, info: dict | None = None) -> None:
    """Write meta-parameters and their config to `path` (.npz), after checking they fit the config."""
    meta = {k: np.asarray(v, np.float32) for k, v in meta.items()}
    check_meta(meta, config)
    arrays = {f"meta/{k}": v for k, v in meta.items()}
    arrays["__config__"] = np.array(config.to_json())
    arrays["__format__"] = np.array(FORMAT_VERSION, np.int32)
    arrays["__info__"] = np.array(json.dumps(info or {}, sort_keys=True))
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)  # never leave a half-written weights file behind


def check_meta(meta, config: HRNNConfig, source: str = "meta-parameters") -> None:
    expected = meta_shapes(config)
    missing, extra = sorted(set(expected) - set(meta)), sorted(set(meta) - set(expected))
    if missing or extra:
        raise WeightsError(f"{source} do not match the architecture: missing {missing}, unexpected {extra}.")
    for k, shape in expected.items():
        if tuple(np.shape(meta[k])) != tuple(shape):
            raise WeightsError(f"{source}: {k} has shape {np.shape(meta[k])}, the config needs {shape}.")
        if not np.all(np.isfinite(meta[k])):
            raise WeightsError(f"{source}: {k} holds non-finite values.")


def _read_npz(f, source: str):
    if not zipfile.is_zipfile(f):  # checked first: numpy's own message would suggest `allow_pickle=True`
        raise WeightsError(f"{source} is not a lopt_tf weights file (not an .npz archive).")
    if hasattr(f, "seek"):
        f.seek(0)
    try:
        with np.load(f, allow_pickle=False) as z:
            files = set(z.files)
            if "__config__" not in files or "__format__" not in files:
                raise WeightsError(f"{source} is not a lopt_tf weights file (no __config__/__format__).")
            version = int(z["__format__"])
            if version != FORMAT_VERSION:
                raise WeightsError(f"{source} has format {version}; this lopt_tf reads format {FORMAT_VERSION}.")
            config = HRNNConfig.from_json(str(z["__config__"]))
            meta = {k[len("meta/"):]: np.asarray(z[k], np.float32) for k in z.files if k.startswith("meta/")}
            info = json.loads(str(z["__info__"])) if "__info__" in files else {}
    except WeightsError:
        raise
    except (zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError) as e:
        raise WeightsError(f"Cannot read weights from {source}: {type(e).__name__}: {e}") from e
    return meta, config, info


def load_weights(weights: str | os.PathLike | None = DEFAULT_WEIGHTS, config: HRNNConfig | None = None):
    """Return (meta, config, info) for a shipped name, an `.npz` path or a SavedModel directory.

    `weights=None` gives the deterministic initialisation for `config` (default config if None).
    If `config` is given it must equal the one stored with the weights, except for `RUNTIME_FIELDS` (taken from
    `config`) and `INIT_FIELDS` (kept from the stored config: they only say how the weights started).
    """
    if weights is None:
        config = config or HRNNConfig()
        return init_meta_numpy(config), config, {"name": "fresh initialisation"}
    weights = os.fspath(weights)
    if os.path.isdir(weights):
        from lopt_tf.export import load_saved_model  # local import: tensorflow SavedModel loading is heavy

        meta, stored, info = load_saved_model(weights)
    elif os.path.isfile(weights):
        meta, stored, info = _read_npz(weights, weights)
    elif weights in available_weights():
        with _shipped_dir().joinpath(f"{weights}.npz").open("rb") as f:
            meta, stored, info = _read_npz(f, f"shipped weights {weights!r}")
    else:
        raise WeightsError(
            f"Unknown weights {weights!r}: not a file or directory, and not a shipped set. "
            f"Shipped sets: {available_weights()}.")
    check_meta(meta, stored, f"weights {weights!r}")
    if config is None:
        return meta, stored, info
    return meta, merge_config(stored, config, f"weights {weights!r}"), info


def merge_config(stored: HRNNConfig, requested: HRNNConfig, source: str = "weights") -> HRNNConfig:
    """The config to run weights made with `stored` under `requested`: `stored` with the `RUNTIME_FIELDS` of
    `requested`. Raises WeightsError if the two differ in anything else than those and `INIT_FIELDS`."""
    merged = dataclasses.replace(stored, **{k: getattr(requested, k) for k in RUNTIME_FIELDS})
    if dataclasses.replace(requested, **{k: getattr(stored, k) for k in INIT_FIELDS}) != merged:
        diff = {k: (v, stored.to_dict()[k]) for k, v in requested.to_dict().items()
                if stored.to_dict()[k] != v and k not in INIT_FIELDS}
        raise WeightsError(f"{source} were made for another architecture; (requested, stored): {diff}.")
    return merged
