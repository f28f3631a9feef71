#!/bin/bash
# hrnn_v9: continues the shipped default (hrnn_v4_x0.03) on "default", the paper's problem list, i.e. the
# distribution of evaluation experiment 1, with tasks about as long as that experiment's runs (1,000 steps):
# 1 + Exp(8) partial unrolls of 50 + Exp(100) steps (<= 400). Why: by `train.select_weights --criterion wins`
# (experiment 1 on 40 validation problems) the shipped set beats tuned Adam on only 38%, and every earlier run
# was meta-trained for longer MLP horizons. Lower meta learning rate (1e-4) than hrnn_v8 (3e-4), which moved the
# MLP behaviour far in 25 steps. Snapshots every 25 meta-steps are ranked by the wins criterion afterwards; the
# meta-trainer's own validation (16 held-out "default" problems, 1,000 steps) is logged for reference.
# From the repository root:
#   nohup bash meta_runs/hrnn_v9/run.sh > /tmp/hrnn_v9.log 2>&1 &        (touch meta_runs/hrnn_v9/STOP to end)
NICE=${NICE:-10} exec bash meta_runs/recycle.sh meta_runs/hrnn_v9 --problem_set default \
  --init_weights hrnn_v4_x0.03 --meta_learning_rate 1e-4 --unrolls_scale 8 \
  --validation_length 1000 --num_validation_problems 16 --checkpoint_every 25 --validate_every 25
