"""Writes init.npz: stable_pes_v3's meta-parameters with a zero global step readout (G = 0 at the start).

    python meta_runs/stable_pes_v4/make_init.py SOURCE.npz   # stable_pes_v3's weights_latest.npz at meta-step 1,207
"""
import dataclasses
import os
import sys

import numpy as np

from lopt_tf import hrnn
from lopt_tf.weights import load_weights, save_weights

meta, config, info = load_weights(sys.argv[1])
config = dataclasses.replace(config, global_lr="readout", global_lr_band=4.6)
fresh = hrnn.init_meta_numpy(config)
meta = {**{k: np.asarray(v) for k, v in meta.items()},
        **{k: v for k, v in fresh.items() if k.startswith("readout/global_lr")}}
save_weights(os.path.join(os.path.dirname(__file__), "init.npz"), meta, config,
             info={"from": "stable_pes_v3", "meta_steps": info.get("meta_steps")})
