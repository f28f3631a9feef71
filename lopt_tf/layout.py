"""Flat-buffer layout of a list of tensors: one [P] vector plus a segment id per element.

All per-parameter math of the optimizer runs on one flat buffer, and per-tensor statistics are segment
reductions, so the cost of tracing/compiling does not grow with a Python loop per tensor (only the
concat/split at the boundary touches each tensor once).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Layout:
    """Static sizes and shapes of the tensors packed into one flat buffer.

    `sizes` may be `(None,)` for a single tensor of unknown length (used by the SavedModel serving
    signature); with several tensors every size must be static.
    """

    shapes: tuple[tuple[int | None, ...], ...]

    @classmethod
    def of(cls, tensors) -> "Layout":
        shapes = tuple(tuple(t.shape.as_list()) if hasattr(t.shape, "as_list") else tuple(t.shape) for t in tensors)
        layout = cls(shapes)
        if layout.num_tensors > 1 and any(s is None for s in layout.sizes):
            raise ValueError(f"Every tensor needs a static shape when there are several, got {shapes}.")
        return layout

    @property
    def num_tensors(self) -> int:
        return len(self.shapes)

    @property
    def sizes(self) -> tuple[int | None, ...]:
        return tuple(None if any(d is None for d in s) else math.prod(s) for s in self.shapes)

    @property
    def num_params(self) -> int | None:
        return None if None in self.sizes else sum(self.sizes)

    def flatten(self, tensors, dtype=None) -> tf.Tensor:
        parts = [tf.reshape(tf.convert_to_tensor(t) if dtype is None else tf.cast(t, dtype), [-1]) for t in tensors]
        return parts[0] if len(parts) == 1 else tf.concat(parts, 0)

    def unflatten(self, flat: tf.Tensor, like) -> list[tf.Tensor]:
        """Split a [P] buffer back into tensors with the shapes and dtypes of `like`."""
        if self.num_tensors == 1:
            parts = [flat]
        else:
            parts = tf.split(flat, list(self.sizes), 0)
        return [tf.cast(tf.reshape(p, tf.shape(t)), t.dtype) for p, t in zip(parts, like)]

    def segment_ids(self) -> tf.Tensor | None:
        """int32 [P] tensor id of every element (None for a single tensor: broadcasting does it)."""
        if self.num_tensors == 1:
            return None
        starts = np.cumsum(self.sizes)[:-1]
        starts = starts[starts < self.num_params]  # trailing empty tensors own no element
        marks = tf.scatter_nd(starts[:, None].astype(np.int32), tf.ones([len(starts)], tf.int32), [self.num_params])
        return tf.cumsum(marks)


class Segments:
    """Per-tensor reductions and broadcasts over a flat buffer, built once per step."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.ids = layout.segment_ids()
        if self.ids is not None:
            self.counts = tf.constant(np.maximum(np.array(layout.sizes, np.float32), 1.0))

    def mean(self, x: tf.Tensor) -> tf.Tensor:
        """[P, ...] -> [T, ...] mean over each tensor's elements."""
        if self.ids is None:
            return tf.reduce_mean(x, 0, keepdims=True)
        total = tf.math.unsorted_segment_sum(x, self.ids, self.layout.num_tensors)
        counts = tf.cast(tf.reshape(self.counts, [-1] + [1] * (x.shape.rank - 1)), x.dtype)
        return total / counts

    def any(self, x: tf.Tensor) -> tf.Tensor:
        """[P] bool -> [T] bool: does any element of the tensor hold True?"""
        if self.ids is None:
            return tf.reduce_any(x, keepdims=True)
        return tf.math.unsorted_segment_max(tf.cast(x, tf.int32), self.ids, self.layout.num_tensors) > 0

    def broadcast(self, v: tf.Tensor) -> tf.Tensor:
        """[T, ...] -> [P, ...] (or [1, ...], which broadcasts, for a single tensor)."""
        if self.ids is None:
            return v
        return tf.gather(v, self.ids)
