"""Meta-train the hierarchical-RNN optimizer.

    python -m train.meta_train --output_dir runs/hrnn --meta_steps 2000 [--resume]

One flag per `train.trainer.MetaTrainConfig` field, same name, same default, help from `trainer.HELP`
(`--xla` is another name of `--jit_compile`; `--hrnn key=value`, repeated, overrides `HRNNConfig` fields).
Single process by default. Multi-worker: set TF_CONFIG on every worker (see README) and pass
`--distributed`; each worker unrolls its own problems and the meta-gradients are all-reduced with
`tf.distribute.MultiWorkerMirroredStrategy` (under `--estimator pes` the particles of all workers' streams
are summed). Outputs in `--output_dir`: `weights_best.npz` (best validation; validated every
`--validate_every` meta-steps and at the last one), `weights_latest.npz`, `saved_model_best/`, `run_config.json`,
`validation.csv`, `snapshots/`, `checkpoints/`, `tensorboard/`; the last line printed lists those written.
"""

import dataclasses
import json
import os
import typing

from absl import app, flags

FLAGS = flags.FLAGS
ALIASES = {"xla": "jit_compile"}  # flag names older run scripts use
NONE = "none"  # the command-line spelling of None for `str | None` fields


def define_dataclass_flags(cls, help_texts: dict, choices: dict | None = None, flag_values=FLAGS) -> None:
    """One absl flag per field of dataclass `cls`, named after it, with its default and `help_texts[name]`.

    bool, int, float and str fields get flags of their type (an enum where `choices` names the values);
    `str | None` a string flag where 'none' means None; a dataclass field a repeatable `--name key=value` flag
    whose values override fields of the default.
    """
    choices = choices or {}
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        name, kind, default, text = field.name, hints[field.name], field.default, help_texts[field.name]
        if kind is bool:
            flags.DEFINE_bool(name, default, text, flag_values=flag_values)
        elif kind is int:
            flags.DEFINE_integer(name, default, text, flag_values=flag_values)
        elif kind is float:
            flags.DEFINE_float(name, default, text, flag_values=flag_values)
        elif name in choices:
            flags.DEFINE_enum(name, default, list(choices[name]), text, flag_values=flag_values)
        elif kind is str:
            flags.DEFINE_string(name, default, text, flag_values=flag_values)
        elif kind == str | None:
            flags.DEFINE_string(name, NONE if default is None else default, text, flag_values=flag_values)
        elif dataclasses.is_dataclass(kind):
            flags.DEFINE_multi_string(name, [], text, flag_values=flag_values)
        else:
            raise TypeError(f"no flag type for {cls.__name__}.{name}: {kind}")


def overrides(kind, items: list[str], base=None):
    """`base` (default `kind()`) with fields set from `key=value` strings (values as JSON; True/False as Python
    spells them)."""
    values = {}
    for item in items:
        key, _, raw = item.partition("=")
        try:
            values[key] = json.loads(raw.lower() if raw in ("True", "False") else raw)
        except json.JSONDecodeError:
            values[key] = raw
    return kind.from_dict({**(kind() if base is None else base).to_dict(), **values})


def dataclass_from_flags(cls, flag_values=FLAGS):
    """The `cls` instance the parsed flags of `define_dataclass_flags(cls, ...)` describe."""
    hints = typing.get_type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        kind, value = hints[field.name], flag_values[field.name].value
        if kind == str | None and value.lower() == NONE:
            value = None
        elif dataclasses.is_dataclass(kind):
            value = overrides(kind, value)
        values[field.name] = value
    return cls(**values)


def define_flags(flag_values=FLAGS) -> None:
    """The program's flags (defined only when run as a program, so importing this module defines none)."""
    from train.trainer import CHOICES, HELP, MetaTrainConfig

    flags.DEFINE_string("output_dir", None, "Where checkpoints, weights and logs go.", required=True,
                        flag_values=flag_values)
    flags.DEFINE_bool("resume", False, "Continue from the latest checkpoint in --output_dir.", flag_values=flag_values)
    flags.DEFINE_bool("distributed", False, "Use MultiWorkerMirroredStrategy (TF_CONFIG must be set).",
                      flag_values=flag_values)
    define_dataclass_flags(MetaTrainConfig, HELP, CHOICES, flag_values)
    for alias, name in ALIASES.items():
        flags.DEFINE_alias(alias, name, flag_values=flag_values)


def config_from_flags(flag_values=FLAGS):
    """The run's `MetaTrainConfig`. An `--hrnn` override (a new architecture) starts from its own fresh
    initialisation unless `--init_weights` is given too: then those weights start the run, and the trainer
    refuses them (`WeightsError`) unless they were made for the architecture the overrides describe."""
    from train.trainer import MetaTrainConfig

    config = dataclass_from_flags(MetaTrainConfig, flag_values)
    if flag_values.hrnn and not flag_values["init_weights"].present:
        config = dataclasses.replace(config, init_weights=None)
    return config


def main(argv):
    del argv
    import tensorflow as tf

    from lopt_tf import export_saved_model
    from train.trainer import MetaTrainer

    strategy = tf.distribute.MultiWorkerMirroredStrategy() if FLAGS.distributed else None
    trainer = MetaTrainer(config_from_flags(), FLAGS.output_dir, strategy=strategy)
    result = trainer.run(resume=FLAGS.resume)
    best = os.path.join(FLAGS.output_dir, "weights_best.npz")
    if trainer.is_chief and os.path.exists(best) and not result["stopped"]:
        export_saved_model(os.path.join(FLAGS.output_dir, "saved_model_best"), weights=best)
    print(final_message(trainer, result, FLAGS.output_dir))


def final_message(trainer, result: dict, output_dir: str) -> str:
    """What the run did and which files it wrote (and, without a weights_best.npz, why and what to use)."""
    message = f"meta-step {result['step']}, skipped meta-gradients {result['skipped']}"
    if result.get("dropped_particles"):
        message += f", dropped PES particles {result['dropped_particles']}"
    if not trainer.is_chief:
        return message + f"; this worker's checkpoints in {output_dir}"
    message += f"; wrote in {output_dir}: " + ", ".join(trainer.outputs())
    if not os.path.exists(os.path.join(output_dir, "weights_best.npz")):
        why = "validation is off (--validate_every=0)" if not trainer.config.validate_every else "no validation ran"
        message += f". No weights_best.npz: {why}; use weights_latest.npz"
    return message


if __name__ == "__main__":
    define_flags()
    app.run(main)
