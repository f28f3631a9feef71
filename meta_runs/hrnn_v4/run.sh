#!/bin/bash
# hrnn_v4: continues the shipped hrnn_v3 (its meta-step 500, copied to start_hrnn_v3_step500.npz) on
# "with_nn_data" (adds MLPs on 10,000 examples, where hrnn_v3 anneals its learning rates under minibatch noise
# and stalls), validated on held-out seeds of the same set. XLA, the process recycled every 15 minutes
# (SIGTERM -> checkpoint, then --resume). From the repository root:
#   nohup bash meta_runs/hrnn_v4/run.sh > /tmp/hrnn_v4.log 2>&1 &        (touch meta_runs/hrnn_v4/STOP to end)
while true; do
  timeout -s TERM 900 python -m train.meta_train --output_dir meta_runs/hrnn_v4 --problem_set with_nn_data \
    --init_weights meta_runs/hrnn_v4/start_hrnn_v3_step500.npz \
    --meta_steps 100000 --min_length 50 --length_scale 100 --max_length 400 --min_unrolls 1 --unrolls_scale 20 \
    --problems_per_step 4 --meta_optimizer adam --meta_learning_rate 1e-3 --stream_clip_norm 1 \
    --checkpoint_every 25 --validate_every 50 --num_validation_problems 48 --validation_length 200 \
    --xla --resume
  rc=$?
  if [ $rc -ne 124 ] && [ $rc -ne 0 ] && [ $rc -ne 143 ]; then echo "meta_train exited with $rc"; sleep 5; fi
  [ -f meta_runs/hrnn_v4/STOP ] && break
done
