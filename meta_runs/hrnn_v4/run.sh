#!/bin/bash
# hrnn_v4: continues the shipped hrnn_v3 (lopt_tf/weights/hrnn_v3.npz, hrnn_v3's meta-step 500) on
# "with_nn_data" (adds MLPs on 10,000 examples, where hrnn_v3 anneals its learning rates under minibatch noise
# and stalls), validated on held-out seeds of the same set; the recipe of meta_runs/recycle.sh, at normal
# priority. From the repository root:
#   nohup bash meta_runs/hrnn_v4/run.sh > /tmp/hrnn_v4.log 2>&1 &        (touch meta_runs/hrnn_v4/STOP to end)
NICE=0 exec bash meta_runs/recycle.sh meta_runs/hrnn_v4 --problem_set with_nn_data \
  --init_weights hrnn_v3
