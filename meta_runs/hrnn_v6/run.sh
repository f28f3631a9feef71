#!/bin/bash
# hrnn_v6: continues hrnn_v5's step 100 (the only hrnn_v5 snapshot that leaves the no-decay plateau of a
# 10,000-step synthetic MLP; a rerun of meta_runs/hrnn_v5/run.sh writes it again, or set START) on
# "with_nn_no_decay", at a 3x smaller meta learning rate (3e-4; hrnn_v5's scores swung between snapshots 50 steps
# apart), validating at 2,000 inner steps on 12 held-out no-decay problems (hrnn_v5's 200-step validation did not
# see the stall). Every validated step is kept in snapshots/.
# From the repository root:
#   nohup bash meta_runs/hrnn_v6/run.sh > /tmp/hrnn_v6.log 2>&1 &        (touch meta_runs/hrnn_v6/STOP to end)
NICE=${NICE:-5} exec bash meta_runs/recycle.sh meta_runs/hrnn_v6 --problem_set with_nn_no_decay \
  --init_weights "${START:-meta_runs/hrnn_v5/snapshots/step_100.npz}" --meta_learning_rate 3e-4 \
  --validation_problem_set nn_no_decay --validation_length 2000 --num_validation_problems 12
