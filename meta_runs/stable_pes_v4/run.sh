#!/usr/bin/env bash
# PES meta-training of the "stable" HRNN with a global step multiplier (HRNNConfig.global_lr="readout": the whole
# update times exp(G), G = 4.6 tanh(w . h2 + b) read out of the global GRU), continued from stable_pes_v3's
# meta-parameters at its meta-step 1,207 with a zero readout (`init.npz`, made by `make_init.py`: G = 0, so the run
# starts as stable_pes_v3's optimizer). Problems: "user_like_default", the user-like networks and the 2017 synthetic
# families at equal total weight, so that the global step meets problems whose best step is decades from Adam(1e-3)'s.
# Everything else as stable_pes_v3 (PES, truncations of 50 inner steps, horizons 100..10,000, clipped normalised-loss
# objective on each step's mini-batch loss, validation on 12 held-out "user_like_valid" problems).
# Rerun this script to resume (--resume continues exactly from the latest checkpoint).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec nice -n 10 python -m train.meta_train --output_dir meta_runs/stable_pes_v4 --resume \
  --init_weights meta_runs/stable_pes_v4/init.npz \
  --estimator pes --problem_set user_like_default --validation_problem_set user_like_valid \
  --meta_objective clipped_ratio --loss_clip 10 --pes_task_loss minibatch \
  --hrnn lr_dynamics=readout --hrnn init_lr=fixed --hrnn nominal_term=adam \
  --hrnn use_lr_shortcut=True --hrnn use_extreme_indicator=True --hrnn stepsize_offset_init=-4.6 \
  --hrnn learned_scale=nominal_rms --hrnn momentum_bias_correction=True \
  --hrnn global_lr=readout --hrnn global_lr_band=4.6 \
  --pes_pairs 8 --pes_std 0.01 --pes_truncation 50 --pes_min_horizon 100 --pes_max_horizon 10000 \
  --problems_per_step 4 --meta_optimizer adam --meta_learning_rate 3e-4 \
  --meta_steps 100000 --checkpoint_every 10 --validate_every 50 \
  --num_validation_problems 12 --validation_length 1000 "$@"
