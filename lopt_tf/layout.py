"""Flat-buffer layout of a list of tensors: one [P] vector plus a segment id per element.

All per-parameter math of the optimizer runs on one flat buffer, and per-tensor statistics are segment
reductions, so the cost of tracing/compiling does not grow with a Python loop per tensor (only the
concat/split at the boundary touches each tensor once).

The buffer may have more rows than there are parameters (`num_rows`, e.g. rounded up to a multiple of 16:
the compiled step runs about 1.4x slower on XLA CPU when the row count is not one, docs/performance.md). The padding rows belong to an extra segment (id `num_tensors`) that every per-tensor
statistic leaves out, and `unflatten` drops them.
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
    rows: int | None = None  # rows of the flat buffer (None: num_params, no padding)

    @classmethod
    def of(cls, tensors, rows: int | None = None) -> "Layout":
        shapes = tuple(tuple(t.shape.as_list()) if hasattr(t.shape, "as_list") else tuple(t.shape) for t in tensors)
        layout = cls(shapes)
        if layout.num_tensors > 1 and any(s is None for s in layout.sizes):
            raise ValueError(f"Every tensor needs a static shape when there are several, got {shapes}.")
        return layout.with_rows(rows)

    def with_rows(self, rows: int | None) -> "Layout":
        """This layout in a buffer of `rows` rows (>= num_params; None or num_params: no padding)."""
        if rows is None or rows == self.num_params:
            return Layout(self.shapes)
        if self.num_params is None or rows < self.num_params:
            raise ValueError(f"A buffer of {rows} rows cannot hold tensors of shapes {self.shapes}.")
        return Layout(self.shapes, int(rows))

    @property
    def num_tensors(self) -> int:
        return len(self.shapes)

    @property
    def sizes(self) -> tuple[int | None, ...]:
        return tuple(None if any(d is None for d in s) else math.prod(s) for s in self.shapes)

    @property
    def num_params(self) -> int | None:
        return None if None in self.sizes else sum(self.sizes)

    @property
    def num_rows(self) -> int | None:
        """Rows of the flat buffer: num_params plus the padding."""
        return self.num_params if self.rows is None else self.rows

    @property
    def num_padding(self) -> int:
        return 0 if self.rows is None else self.rows - self.num_params

    @property
    def num_segments(self) -> int:
        """Segments of the buffer: one per tensor, and one more for the padding rows if there are any."""
        return self.num_tensors + (self.num_padding > 0)

    def flatten(self, tensors, dtype=None) -> tf.Tensor:
        """[num_rows] buffer of the tensors (cast to `dtype`), padded with zeros."""
        parts = [tf.reshape(tf.convert_to_tensor(t) if dtype is None else tf.cast(t, dtype), [-1]) for t in tensors]
        if self.num_padding:
            parts.append(tf.zeros([self.num_padding], parts[0].dtype))
        return parts[0] if len(parts) == 1 else tf.concat(parts, 0)

    def unflatten(self, flat: tf.Tensor, like) -> list[tf.Tensor]:
        """Split a [num_rows] buffer (or, padded layouts, a [num_params] one) back into tensors with the shapes
        and dtypes of `like`; the padding rows are dropped."""
        sizes = list(self.sizes)
        if self.num_padding and flat.shape[0] != self.num_params:
            sizes.append(self.num_padding)
        parts = [flat] if len(sizes) == 1 else tf.split(flat, sizes, 0)
        return [tf.cast(tf.reshape(p, tf.shape(t)), t.dtype) for p, t in zip(parts, like)]

    def segment_ids(self) -> tf.Tensor | None:
        """int32 [num_rows] tensor id of every element, `num_tensors` for the padding (None for a single
        tensor without padding: broadcasting does it)."""
        if self.num_segments == 1:
            return None
        # A constant built here: XLA would otherwise constant-fold a cumulative sum over all rows one element at
        # a time, which takes about a minute to compile at 4M rows (docs/performance.md).
        counts = list(self.sizes) + [self.num_padding]
        return tf.constant(np.repeat(np.arange(len(counts), dtype=np.int32), counts))


class Segments:
    """Per-tensor reductions and broadcasts over a flat buffer, built once per step."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.ids = layout.segment_ids()
        if self.ids is not None:
            self.counts = tf.constant(np.maximum(np.array(layout.sizes, np.float32), 1.0))

    def sum(self, x: tf.Tensor) -> tf.Tensor:
        """[rows, ...] -> [T, ...] sum over each tensor's elements (the padding rows left out)."""
        return segment_sum(x, self.ids, self.layout.num_segments)[: self.layout.num_tensors]

    def mean(self, x: tf.Tensor) -> tf.Tensor:
        """[rows, ...] -> [T, ...] mean over each tensor's elements."""
        if self.ids is None:
            return tf.reduce_mean(x, 0, keepdims=True)
        counts = tf.cast(tf.reshape(self.counts, [-1] + [1] * (x.shape.rank - 1)), x.dtype)
        return self.sum(x) / counts

    def any(self, x: tf.Tensor) -> tf.Tensor:
        """[rows] bool -> [T] bool: does any element of the tensor hold True?"""
        if self.ids is None:
            return tf.reduce_any(x, keepdims=True)
        hits = tf.math.unsorted_segment_max(tf.cast(x, tf.int32), self.ids, self.layout.num_segments)
        return hits[: self.layout.num_tensors] > 0

    def broadcast(self, v: tf.Tensor) -> tf.Tensor:
        """[T, ...] -> [rows, ...] (or [1, ...], which broadcasts, for a single tensor without padding); the
        padding rows get zeros (False)."""
        return gather(pad_segments(v, self.layout), self.ids)


def pad_segments(v: tf.Tensor, layout: Layout) -> tf.Tensor:
    """[T, ...] per-tensor values -> [num_segments, ...]: a row of zeros (False) for the padding segment."""
    if not layout.num_padding:
        return v
    return tf.concat([v, tf.zeros_like(v[:1])], 0)


def gather(v: tf.Tensor, ids) -> tf.Tensor:
    """[segments, ...] -> [rows, ...] by segment id; with ids None (one tensor) the [1, ...] value broadcasts."""
    return v if ids is None else tf.gather(v, ids)


def segment_sum(x: tf.Tensor, ids, num_segments: int) -> tf.Tensor:
    """[rows, ...] -> [num_segments, ...] sums (ids None: one tensor, [1, ...])."""
    return tf.reduce_sum(x, 0, keepdims=True) if ids is None else tf.math.unsorted_segment_sum(x, ids, num_segments)
