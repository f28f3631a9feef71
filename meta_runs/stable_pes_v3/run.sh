#!/usr/bin/env bash
# PES meta-training of the "stable" HRNN with bias-corrected momenta (`momentum_bias_correction`, docs/stable_design.md),
# continued from stable_pes_v2's meta-parameters at meta-step 2,098 (`init.npz`: those values, the config with
# momentum_bias_correction=True). Everything else as stable_pes_v2 (problem set "user_like", PES with truncations
# of 50 inner steps, horizons 100..10,000, clipped normalised-loss objective on each step's mini-batch loss,
# validation on 12 held-out "user_like_valid" problems); a fresh meta-optimizer state.
# Rerun this script to resume (--resume continues exactly from the latest checkpoint).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec nice -n 10 python -m train.meta_train --output_dir meta_runs/stable_pes_v3 --resume \
  --init_weights meta_runs/stable_pes_v3/init.npz \
  --estimator pes --problem_set user_like --validation_problem_set user_like_valid \
  --meta_objective clipped_ratio --loss_clip 10 --pes_task_loss minibatch \
  --hrnn lr_dynamics=readout --hrnn init_lr=fixed --hrnn nominal_term=adam \
  --hrnn use_lr_shortcut=True --hrnn use_extreme_indicator=True --hrnn stepsize_offset_init=-4.6 \
  --hrnn learned_scale=nominal_rms --hrnn momentum_bias_correction=True \
  --pes_pairs 8 --pes_std 0.01 --pes_truncation 50 --pes_min_horizon 100 --pes_max_horizon 10000 \
  --problems_per_step 4 --meta_optimizer adam --meta_learning_rate 3e-4 \
  --meta_steps 100000 --checkpoint_every 10 --validate_every 50 \
  --num_validation_problems 12 --validation_length 1000 "$@"
