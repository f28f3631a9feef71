"""Meta-training and evaluation of the hierarchical-RNN learned optimizer."""
