"""Matrix-multiplication-algorithm discovery: find a bilinear n×n matmul algorithm with k products.

Parameters θ_a, θ_b of shape (n², k) define k products m_r = (Σ_i θ_a[i, r] A_i)(Σ_j θ_b[j, r] B_j). Over all n⁴
one-hot pairs (A, B) = (E_i, E_j) the products form P (n⁴, k) with P[(i, j), r] = θ_a[i, r] θ_b[j, r]; the output
coefficients θ_c (k, n²) are solved in closed form by least squares against C[(i, j)] = vec(E_i E_j), and the loss
is Σ(P θ_c − C)². A tiny ridge keeps the solve well posed (the loss stays a sum of squares, so non-negative); the
solve is `tf.linalg.solve`, whose gradient is again a solve, so second derivatives exist and it compiles with XLA.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from problems.base import Problem, stateless_normal


def one_hot_products(n: int) -> np.ndarray:
    """C (n⁴, n²): row (i, j) is vec(E_i @ E_j) for the one-hot n×n matrices E_i, E_j."""
    eye = np.eye(n * n, dtype=np.float32).reshape(n * n, n, n)
    return np.einsum("iab,jbc->ijac", eye, eye).reshape(n**4, n * n)


@dataclasses.dataclass(frozen=True, eq=False)
class MatMulAlgorithm(Problem):
    n: int
    rank: int
    ridge: float = 1e-6
    default_family = "matmul"

    @property
    def name(self) -> str:
        return f"matmul_n{self.n}_k{self.rank}"

    @property
    def param_shapes(self):
        return ((self.n * self.n, self.rank),) * 2

    def init_params(self, seed):
        """Columns L2-normalised, as in the original."""
        return [tf.math.l2_normalize(stateless_normal(s, [seed, k]), axis=0) for k, s in enumerate(self.param_shapes)]

    def objective(self, params):
        theta_a, theta_b = params
        n2 = self.n * self.n
        products = tf.reshape(theta_a[:, None, :] * theta_b[None, :, :], [n2 * n2, self.rank])
        targets = tf.constant(one_hot_products(self.n))
        gram = tf.matmul(products, products, transpose_a=True) + self.ridge * tf.eye(self.rank)
        theta_c = tf.linalg.solve(gram, tf.matmul(products, targets, transpose_a=True))
        return tf.reduce_sum(tf.square(tf.matmul(products, theta_c) - targets))
