"""ImageNet evaluation problems: InceptionV3 and ResNet50V2 (keras.applications, from scratch) fed by tfds.

* `imagenet_dataset`: the tfds `imagenet2012` pipeline with standard preprocessing — training: Inception-style
  random-resized crop (area 8–100 %, aspect 3/4–4/3) and random horizontal flip, stateless and seeded per example;
  evaluation: central crop of 87.5 % and resize. Pixels are scaled to [−1, 1] (the "tf" mode of both
  architectures' `preprocess_input`). ImageNet needs a manual download: pass the directory holding the tars as
  `manual_dir` (or set `$LOPT_IMAGENET_MANUAL_DIR`). Without it (as on CI) the pipeline is tested with tfds's mock
  data (`tfds.testing.mock_data`), i.e. random images with the real feature spec.
* `build_inception_v3` / `build_resnet50_v2`: `weights=None`, logits output, any input size. InceptionV3 needs at
  least 75×75, so smaller inputs are bilinearly upsampled to 75×75 inside the model.
* `small_imagenet_problem`: a small-resolution, few-class variant (default 64×64, 10 classes) as a `KerasProblem`
  on a fixed set of examples, cheap enough for CPU stability checks of an optimizer.
"""

from __future__ import annotations

import contextlib
import functools
import os

import keras
import numpy as np
import tensorflow as tf

from problems.keras_problem import KerasProblem

IMAGENET_MANUAL_DIR_ENV = "LOPT_IMAGENET_MANUAL_DIR"
INCEPTION_MIN_SIZE = 75
ARCHITECTURES = ("inception_v3", "resnet50_v2")
DEFAULT_IMAGE_SIZE = {"inception_v3": 299, "resnet50_v2": 224}


def scale_pixels(image: tf.Tensor) -> tf.Tensor:
    """[0, 255] → [−1, 1]."""
    return tf.cast(image, tf.float32) / 127.5 - 1.0


def preprocess_train(image: tf.Tensor, image_size: int, seed: tf.Tensor) -> tf.Tensor:
    """Random-resized crop + random flip, deterministic in `seed` (an int32 [2] tensor)."""
    crop_seed = tf.random.experimental.stateless_fold_in(seed, 0)
    flip_seed = tf.random.experimental.stateless_fold_in(seed, 1)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=crop_seed,
        min_object_covered=0.1, aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0), max_attempts=10,
        use_image_if_no_bounding_boxes=True)
    image = tf.slice(image, begin, size)
    image = tf.image.resize(image, (image_size, image_size), method="bilinear")
    image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
    return scale_pixels(image)


def preprocess_eval(image: tf.Tensor, image_size: int, crop_fraction: float = 0.875) -> tf.Tensor:
    """Central crop of `crop_fraction` of the shorter side, resized to image_size × image_size."""
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    crop = tf.cast(tf.cast(tf.minimum(height, width), tf.float32) * crop_fraction, tf.int32)
    crop = tf.maximum(crop, 1)
    image = tf.image.crop_to_bounding_box(image, (height - crop) // 2, (width - crop) // 2, crop, crop)
    return scale_pixels(tf.image.resize(image, (image_size, image_size), method="bilinear"))


def imagenet_builder(data_dir=None):
    import tensorflow_datasets as tfds

    return tfds.builder("imagenet2012", data_dir=data_dir)


def imagenet_dataset(split: str, batch_size: int, image_size: int = 224, training: bool = False,
                     num_classes: int = 1000, seed: int = 0, data_dir=None, manual_dir=None,
                     prepare: bool = True) -> tf.data.Dataset:
    """Batches of (images float32 [B, S, S, 3] in [−1, 1], labels int32 [B]) from tfds `imagenet2012`.

    `num_classes` < 1000 keeps only labels < num_classes (the few-class variant). `prepare=True` runs
    `download_and_prepare` with `manual_dir` (default `$LOPT_IMAGENET_MANUAL_DIR`), which needs the ImageNet tars.
    """
    import tensorflow_datasets as tfds

    builder = imagenet_builder(data_dir)
    if prepare:
        manual_dir = manual_dir or os.environ.get(IMAGENET_MANUAL_DIR_ENV)
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    ds = builder.as_dataset(split=split, shuffle_files=training, read_config=tfds.ReadConfig(shuffle_seed=seed))
    ds = ds.map(lambda ex: (ex["image"], tf.cast(ex["label"], tf.int32)))
    if num_classes < 1000:
        ds = ds.filter(lambda image, label: label < num_classes)
    if training:
        ds = ds.enumerate().map(
            lambda i, ex: (preprocess_train(ex[0], image_size, tf.stack([tf.constant(seed, tf.int32),
                                                                         tf.cast(i, tf.int32)])), ex[1]),
            num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(lambda image, label: (preprocess_eval(image, image_size), label),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)


@contextlib.contextmanager
def mock_imagenet(num_examples: int, num_classes: int = 1000, height: int = 80, width: int = 96, seed: int = 0):
    """Within this block tfds's `imagenet2012` yields MOCK data (ImageNet cannot be downloaded here): random uint8
    images of height x width and labels uniform in [0, num_classes).

    tfds's automatic mock (`tfds.testing.mock_data(num_examples=n)`) draws labels from all 1,000 classes, so the
    few-class filter keeps about 1 % of its examples; this mock gives every example a label the filter keeps.
    """
    import tensorflow_datasets as tfds

    def as_dataset(self, *args, **kwargs):
        rng = np.random.default_rng(seed)
        return tf.data.Dataset.from_tensor_slices({
            "image": rng.integers(0, 256, (num_examples, height, width, 3), dtype=np.uint8),
            "label": rng.integers(0, num_classes, num_examples).astype(np.int64),
            "file_name": tf.constant([f"mock_{i}.JPEG" for i in range(num_examples)])})

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        yield


def build_inception_v3(num_classes: int = 1000, image_size: int = 299) -> keras.Model:
    """InceptionV3 from scratch with logits output; inputs below 75×75 are upsampled to 75×75 in the model."""
    core_size = max(image_size, INCEPTION_MIN_SIZE)
    core = keras.applications.InceptionV3(weights=None, input_shape=(core_size, core_size, 3), classes=num_classes,
                                          classifier_activation=None)
    if core_size == image_size:
        return core
    inputs = keras.Input((image_size, image_size, 3))
    resized = keras.layers.Resizing(core_size, core_size, interpolation="bilinear")(inputs)
    return keras.Model(inputs, core(resized), name=f"inception_v3_{image_size}")


def build_resnet50_v2(num_classes: int = 1000, image_size: int = 224) -> keras.Model:
    """ResNet50V2 from scratch with logits output."""
    return keras.applications.ResNet50V2(weights=None, input_shape=(image_size, image_size, 3), classes=num_classes,
                                         classifier_activation=None)


BUILDERS = {"inception_v3": build_inception_v3, "resnet50_v2": build_resnet50_v2}


def dataset_to_arrays(ds: tf.data.Dataset, max_examples: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to `max_examples` (images, labels) from a batched dataset, as float32 / int32 numpy arrays."""
    images, labels, count = [], [], 0
    for x, y in ds:
        images.append(x.numpy())
        labels.append(y.numpy())
        count += len(y)
        if count >= max_examples:
            break
    if not images:
        raise ValueError("the dataset yielded no examples")
    return np.concatenate(images)[:max_examples].astype(np.float32), np.concatenate(labels)[:max_examples]


def imagenet_problem(architecture: str, images: np.ndarray, labels: np.ndarray, num_classes: int,
                     batch_size: int, eval_images: np.ndarray | None = None, eval_labels: np.ndarray | None = None,
                     objective_examples: int | None = None) -> KerasProblem:
    """An ImageNet architecture as a `KerasProblem` on fixed preprocessed examples (images in [−1, 1]).

    BatchNorm runs in training mode (batch statistics), as under `fit`.
    """
    if architecture not in BUILDERS:
        raise ValueError(f"unknown architecture {architecture!r}; known: {ARCHITECTURES}")
    image_size = int(images.shape[1])
    return KerasProblem(
        f"imagenet_{architecture}_{image_size}px_{num_classes}cls",
        functools.partial(BUILDERS[architecture], num_classes, image_size),
        images, labels.astype(np.int32), batch_size, x_eval=eval_images, y_eval=eval_labels,
        preprocess=tf.identity, training=True, objective_examples=objective_examples, family="imagenet")


def small_imagenet_problem(architecture: str = "resnet50_v2", image_size: int = 64, num_classes: int = 10,
                           num_examples: int = 256, batch_size: int = 32, seed: int = 0, **dataset_kwargs,
                           ) -> KerasProblem:
    """The CPU-sized variant: `num_examples` training images at `image_size`, the first `num_classes` classes."""
    ds = imagenet_dataset("train", batch_size=batch_size, image_size=image_size, training=True,
                          num_classes=num_classes, seed=seed, **dataset_kwargs)
    images, labels = dataset_to_arrays(ds, num_examples)
    return imagenet_problem(architecture, images, labels, num_classes, batch_size)
