#!/bin/bash
# hrnn_v3: continues hrnn_v2's meta-parameters at its last meta-step, 1168 (hrnn_v2's weights_latest.npz: rerun
# meta_runs/hrnn_v2/run.sh to that step first, or set START to another file) on the "with_nn" problem set (adds
# small and NN-fan-in MLPs), validated on held-out seeds of the same set; the recipe of meta_runs/recycle.sh.
# From the repository root:
#   nohup bash meta_runs/hrnn_v3/run.sh > /tmp/hrnn_v3.log 2>&1 &        (touch meta_runs/hrnn_v3/STOP to end)
exec bash meta_runs/recycle.sh meta_runs/hrnn_v3 --problem_set with_nn \
  --init_weights "${START:-meta_runs/hrnn_v2/weights_latest.npz}"
