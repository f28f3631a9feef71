#!/bin/bash
# hrnn_v5: continues the shipped hrnn_v4 (lopt_tf/weights/hrnn_v4.npz) on "with_nn_no_decay", which adds the
# wide MLP families without weight decay: every classifier hrnn_v4 saw had a 1e-3 decay, and it stalls when the
# loss can go to ~0 (a no-decay synthetic MLP, and the MNIST networks). Validated on held-out seeds of the same
# set; the recipe of meta_runs/recycle.sh. From the repository root:
#   nohup bash meta_runs/hrnn_v5/run.sh > /tmp/hrnn_v5.log 2>&1 &        (touch meta_runs/hrnn_v5/STOP to end)
NICE=${NICE:-5} exec bash meta_runs/recycle.sh meta_runs/hrnn_v5 --problem_set with_nn_no_decay \
  --init_weights hrnn_v4
