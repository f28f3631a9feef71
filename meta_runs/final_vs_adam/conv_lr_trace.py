"""The MNIST ConvNet stall: loss and per-tensor mean log LR every 500 steps of `fit` (a diagnosis on evaluation
problems, never used to select weights).

    python meta_runs/final_vs_adam/conv_lr_trace.py convnet relu MODEL_SEED OPT_SEED STEPS {random,no_tensor_offset} [WEIGHTS]

MODEL_SEED seeds the Keras model and the data order, OPT_SEED the optimizer's initial learning rates.
`no_tensor_offset` replaces the per-tensor part of the initial log-LR draw by its mean (every tensor centred on
1e-4), keeping the per-element part.
"""
import sys, math, time, json
import numpy as np, tensorflow as tf, keras
sys.path.insert(0, ".")  # run from the repository root
from problems import mnist
import lopt_tf
from lopt_tf import hrnn

arch, act, mseed, oseed, steps, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
weights = sys.argv[7] if len(sys.argv) > 7 else "hrnn_v4_x0.03"
orig_init = hrnn.init_state
if mode == "no_tensor_offset":
    def patched(meta, config, params, seed=0):
        st = orig_init(meta, config, params, seed)
        from lopt_tf.layout import Layout, Segments
        lay = Layout.of(params); seg = Segments(lay)
        lo, hi = config.log_lr_bounds
        per_tensor = tf.random.stateless_uniform([lay.num_tensors], [seed, 2], lo / 2, hi / 2, alg="philox")
        st["log_lr"] = st["log_lr"] - tf.reshape(seg.broadcast(per_tensor[:, None]), [-1]) + (lo + hi) / 4
        return st
    hrnn.init_state = patched
data = mnist.load_mnist("auto")
build = mnist.mnist_mlp_problem if arch == "mlp" else mnist.mnist_convnet_problem
problem = build(act, data=data, batch_size=64)
model = problem.make_model(mseed)
opt = lopt_tf.LearnedOptimizer(weights=weights, seed=oseed)
model.compile(optimizer=opt, loss=problem.loss_fn())
train = problem.train_dataset(shuffle_seed=mseed).repeat()
full = problem.train_dataset(shuffle_seed=None, batch_size=1000)
def tensor_lr():
    st = opt.state; lr = st["log_lr"].numpy(); out = []; i = 0
    for v in model.trainable_variables:
        n = int(np.prod(v.shape)); out.append(round(float(lr[i:i+n].mean()), 2)); i += n
    return out
every = 500
print("loss0", float(model.evaluate(full, verbose=0)), flush=True)
t0 = time.time()
for k in range(steps // every):
    model.fit(train, steps_per_epoch=every, epochs=1, verbose=0)
    print((k + 1) * every, "loss %.3g" % float(model.evaluate(full, verbose=0)), "lr", tensor_lr(), "%.0fs" % (time.time() - t0), flush=True)
