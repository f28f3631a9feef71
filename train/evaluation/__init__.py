"""The paper's experiments: learned optimizer vs tuned Adam / RMSProp / SGD-momentum (see `train.evaluate`)."""
