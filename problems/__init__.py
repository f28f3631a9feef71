"""Problems for meta-training and evaluating learned optimizers (see problems/README or the package docstrings)."""
