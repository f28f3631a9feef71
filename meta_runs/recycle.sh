#!/bin/bash
# The shipped weights' meta-training recipe, run resumably: usage (from the repository root)
#   bash meta_runs/recycle.sh RUN_DIR [more train.meta_train flags]
# XLA keeps every task's compiled code mapped, so the process is recycled every 15 minutes (SIGTERM ->
# checkpoint, then --resume, which is exact). `touch RUN_DIR/STOP` ends the loop after the current process.
# NICE (default 10) sets the process priority.
dir=$1
shift
while true; do
  timeout -s TERM 900 nice -n "${NICE:-10}" python -m train.meta_train --output_dir "$dir" \
    --meta_steps 100000 --min_length 50 --length_scale 100 --max_length 400 --min_unrolls 1 --unrolls_scale 20 \
    --problems_per_step 4 --meta_optimizer adam --meta_learning_rate 1e-3 --stream_clip_norm 1 \
    --checkpoint_every 25 --validate_every 50 --num_validation_problems 48 --validation_length 200 \
    "$@" --xla --resume
  rc=$?
  if [ $rc -ne 124 ] && [ $rc -ne 0 ] && [ $rc -ne 143 ]; then echo "meta_train exited with $rc"; sleep 5; fi
  [ -f "$dir/STOP" ] && break
done
