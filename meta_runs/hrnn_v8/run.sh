#!/bin/bash
# hrnn_v8: continues the shipped default (hrnn_v4_x0.03) on "with_conv_no_decay", the no-decay MLP set plus small
# ConvNets (~19% of tasks). Why: the shipped weights anneal their learning rates as MLPs want and stall on ConvNets
# (MNIST ConvNet relu 1.8e-3 and sigmoid 0.165 after 10,000 steps, Adam 1e-3 5.3e-6 and 6.5e-4); no global step
# scale serves both (meta_runs/step_scale/NOTES.md: x0.03 best on MLPs, x0.1 on ConvNets). Long tasks
# (--unrolls_scale 100, as hrnn_v7) so that late annealing costs meta-loss; validation on 8 held-out problems of
# "nn_conv_no_decay" (half MLPs, half ConvNets) at 2,000 steps. From the repository root:
#   nohup bash meta_runs/hrnn_v8/run.sh > /tmp/hrnn_v8.log 2>&1 &        (touch meta_runs/hrnn_v8/STOP to end)
NICE=${NICE:-10} exec bash meta_runs/recycle.sh meta_runs/hrnn_v8 --problem_set with_conv_no_decay \
  --init_weights hrnn_v4_x0.03 --meta_learning_rate 3e-4 --unrolls_scale 100 \
  --validation_problem_set nn_conv_no_decay --validation_length 2000 --num_validation_problems 8 \
  --checkpoint_every 10 --validate_every 25
