#!/bin/bash
# hrnn_v2: resumable meta-training with XLA; the process is recycled every 15 minutes (SIGTERM -> checkpoint,
# then --resume) because XLA keeps every task's compiled code mapped. Run from the repository root:
#   nohup bash meta_runs/hrnn_v2/run.sh > /tmp/hrnn_v2.log 2>&1 &
# Stage 1 (the scalar search in TRAINING.md) chose the starting step-size offset: --hrnn stepsize_offset_init=4.
while true; do
  timeout -s TERM 900 nice -n 10 python -m train.meta_train --output_dir meta_runs/hrnn_v2 --problem_set default \
    --meta_steps 100000 --min_length 50 --length_scale 100 --max_length 400 --min_unrolls 1 --unrolls_scale 20 \
    --problems_per_step 4 --meta_optimizer adam --meta_learning_rate 1e-3 --stream_clip_norm 1 \
    --checkpoint_every 25 --validate_every 50 --num_validation_problems 48 --validation_length 200 \
    --hrnn stepsize_offset_init=4 --xla --resume
  rc=$?
  if [ $rc -ne 124 ] && [ $rc -ne 0 ] && [ $rc -ne 143 ]; then echo "meta_train exited with $rc"; sleep 5; fi
  [ -f meta_runs/hrnn_v2/STOP ] && break
done
