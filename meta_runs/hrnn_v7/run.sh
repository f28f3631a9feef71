#!/bin/bash
# hrnn_v7: continues hrnn_v6's step 200 (best 2,000-step validation of hrnn_v6, kept as
# meta_runs/hrnn_v6/weights_best.npz) with 5x longer tasks. hrnn_v6 trains the MNIST MLP (relu) to 0.189 and then
# stalls: its log learning rate falls by ~0.0047 per step without bound (-11 at step 250, -21.5 at step 2,500).
# Tasks of hrnn_v6 lasted 1 + Exp(20) partial unrolls (~3,000 inner steps); here 1 + Exp(100) (~15,000), so
# meta-gradients also come from late, low-loss stretches where such a decay costs a lot of the log meta-objective. Validation: 8 held-out no-decay problems at 5,000 steps.
# From the repository root:
#   nohup bash meta_runs/hrnn_v7/run.sh > /tmp/hrnn_v7.log 2>&1 &        (touch meta_runs/hrnn_v7/STOP to end)
NICE=${NICE:-5} exec bash meta_runs/recycle.sh meta_runs/hrnn_v7 --problem_set with_nn_no_decay \
  --init_weights meta_runs/hrnn_v6/weights_best.npz --meta_learning_rate 3e-4 --unrolls_scale 100 \
  --validation_problem_set nn_no_decay --validation_length 5000 --num_validation_problems 8
