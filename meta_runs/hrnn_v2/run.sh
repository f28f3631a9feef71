#!/bin/bash
# hrnn_v2: the recipe of meta_runs/recycle.sh on the "default" set. Run from the repository root:
#   nohup bash meta_runs/hrnn_v2/run.sh > /tmp/hrnn_v2.log 2>&1 &        (touch meta_runs/hrnn_v2/STOP to end)
# Stage 1 (the scalar search in TRAINING.md) chose the starting step-size offset: --hrnn stepsize_offset_init=4.
exec bash meta_runs/recycle.sh meta_runs/hrnn_v2 --problem_set default --hrnn stepsize_offset_init=4
