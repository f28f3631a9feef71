"""Meta-training worker processes on 127.0.0.1 under MultiWorkerMirroredStrategy, for the distributed tests."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import tensorflow as tf

import lopt_tf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_workers(flags, output_dir, count=2):
    """`python -m train.meta_train --distributed` in `count` processes (CPU only), one cluster on free ports."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(count)]}
    procs = []
    for index in range(count):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
                   CUDA_VISIBLE_DEVICES="")
        procs.append(subprocess.Popen([sys.executable, "-m", "train.meta_train", f"--output_dir={output_dir}",
                                       "--distributed", *flags], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    return procs


def finish(procs, timeout=500):
    """Wait for the workers; fail with the ends of their outputs unless every one exits 0."""
    outputs = [p.communicate(timeout=timeout)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "".join(out[-3000:] for out in outputs)
    return outputs


def chief_and_worker1_meta(output_dir):
    """The meta-parameters the chief wrote (`weights_latest.npz`) and those of worker 1's latest checkpoint."""
    chief, _, _ = lopt_tf.load_weights(os.path.join(output_dir, "weights_latest.npz"))
    worker1 = {k: tf.Variable(tf.zeros_like(v)) for k, v in chief.items()}
    tf.train.Checkpoint(meta=worker1).read(
        tf.train.latest_checkpoint(os.path.join(output_dir, "checkpoints_worker1"))).expect_partial()
    return chief, {k: np.asarray(v.numpy()) for k, v in worker1.items()}
