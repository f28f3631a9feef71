#!/bin/bash
# Ablation weight sets for the evaluation's experiment 5 (paper Fig. 6): the same meta-training recipe and the
# same budget (100 meta-steps on the "with_nn" set, each from a fresh initialisation with step offset 4) for the default architecture and for each feature switched off (or attention on).
# Resumable: rerun the script; finished runs are skipped. From the repository root:
#   nohup bash meta_runs/ablations/run.sh > /tmp/ablations.log 2>&1 &
STEPS=100
declare -A ABLATIONS=(
  [default]=""
  [no_hierarchy]="--hrnn level_sizes=[10]"
  [one_timescale]="--hrnn num_gradient_scales=1"
  [no_input_scaling]="--hrnn dynamic_input_scaling=False"
  [no_relative_inputs]="--hrnn use_relative_lr=False --hrnn use_log_means_squared=False"
  [with_attention]="--hrnn use_attention=True"
)
for name in default no_hierarchy one_timescale no_input_scaling no_relative_inputs with_attention; do
  dir=meta_runs/ablations/$name
  if [ -f $dir/validation.csv ] && grep -q "^$STEPS," $dir/validation.csv; then continue; fi
  nice -n 15 python -m train.meta_train --output_dir $dir --problem_set with_nn \
    --meta_steps $STEPS --min_length 50 --length_scale 100 --max_length 400 --min_unrolls 1 --unrolls_scale 20 \
    --problems_per_step 4 --meta_optimizer adam --meta_learning_rate 1e-3 --stream_clip_norm 1 \
    --checkpoint_every 25 --validate_every 50 --num_validation_problems 48 --validation_length 200 \
    --hrnn stepsize_offset_init=4 ${ABLATIONS[$name]} --xla --resume
done
