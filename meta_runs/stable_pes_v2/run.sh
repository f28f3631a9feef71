#!/usr/bin/env bash
# PES meta-training of the "stable" HRNN preset (docs/stable_design.md; learned step at the nominal term's
# per-tensor RMS) on models like users' (problem set "user_like": MLPs / ConvNets with and without BatchNorm /
# LayerNorm and small RNNs on freshly sampled data, weight-scale augmented), task horizons log-uniform in
# 100..10,000 inner steps, clipped normalised-loss objective scored on each step's mini-batch loss. Starts from
# the fresh initialisation of that architecture (the values of lopt_tf/weights/stable_init.npz, whose config also
# has the momenta's bias correction, which this run does not).
# Rerun this script to resume (--resume continues exactly from the latest checkpoint).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec nice -n 10 python -m train.meta_train --output_dir meta_runs/stable_pes_v2 --resume \
  --estimator pes --problem_set user_like --validation_problem_set user_like_valid \
  --meta_objective clipped_ratio --loss_clip 10 --pes_task_loss minibatch \
  --hrnn lr_dynamics=readout --hrnn init_lr=fixed --hrnn nominal_term=adam \
  --hrnn use_lr_shortcut=True --hrnn use_extreme_indicator=True --hrnn stepsize_offset_init=-4.6 \
  --hrnn learned_scale=nominal_rms \
  --pes_pairs 8 --pes_std 0.01 --pes_truncation 50 --pes_min_horizon 100 --pes_max_horizon 10000 \
  --problems_per_step 4 --meta_optimizer adam --meta_learning_rate 3e-4 \
  --meta_steps 100000 --checkpoint_every 10 --validate_every 50 \
  --num_validation_problems 12 --validation_length 1000 "$@"
