"""Why does the Keras `luong_translator` learn slower per step than the PyTorch anchor?

    python benchmarks/per_step_diagnosis.py [--steps 300] [--variants a,b,...] [--exact-steps 8]

Noise-free by construction: both frameworks train on the same exported batches
(`export_batches.py`) in the same order, from weights ported between them (`torch_luong.py`),
with the same schedule; only the frameworks' own training step (and dropout's random draws)
differ. Variants (name: framework, initial weights):

- `keras_kinit`:  Keras, its own init (glorot / orthogonal / unit forget bias) — ours as is;
- `torch_kinit`:  torch, the same initial weights ported from `keras_kinit`;
- `torch_uinit`:  torch, the anchor's uniform ±0.1 init;
- `keras_uinit`:  Keras, the same initial weights ported from `torch_uinit`;
- `keras_initscale`: Keras with the builder's `init_scale: 0.1` (its own uniform draws).

Ablations: `torch_kinit+output` (any of the groups in `GROUPS`, several joined by `+`) starts
from Keras' init with that group's weights taken from the uniform init; `torch_kinit:keras`
trains with Adam as Keras writes it (ε on the raw √v, see `torch_luong.KerasStyleAdam`).

`keras_kinit` vs `torch_kinit` (and `keras_uinit` vs `torch_uinit`) isolates the training
step; `*_kinit` vs `*_uinit` the initialisation. `--exact-steps N` first runs N steps with
dropout off from identical weights in Keras, torch with Keras' Adam formula, and torch's Adam:
the losses must agree step for step unless the training steps differ.

Writes `benchmarks/results/per_step_diagnosis.json` after each variant.
"""

import argparse
import datetime
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

# Siblings in benchmarks/, importable once HERE is on sys.path (the script runs from anywhere).
from export_batches import DEFAULT_PATH, keras_model_for  # noqa: E402
from machine import machine_line  # noqa: E402

RESULTS = HERE / "results" / "per_step_diagnosis.json"
VARIANTS = ("keras_kinit", "torch_kinit", "torch_uinit", "keras_uinit", "keras_initscale")
CHECKPOINTS = (50, 100, 200, 300)


def build_keras(path, keras_init=True, **overrides):
    """The Keras translator of the export; `keras_init`: Keras' own initializers (glorot,
    orthogonal, forget bias 1), also where the builder's `init_scale` default is not 0."""
    from zoo.models import catalog

    if keras_init and "init_scale" in catalog.get_builder("luong_translator").defaults():
        overrides["init_scale"] = 0.0
    return keras_model_for(path, **overrides)


def keras_compile(model, config, total_steps, epsilon=None):
    """Compile as `zoo.training.trainer` does (optimizer, schedule, clip, loss)."""
    import keras

    from zoo.losses import SmoothedSequenceLoss
    from zoo.training.schedules import WarmupCosineDecay

    schedule = WarmupCosineDecay(config["learning_rate"], config["warmup_steps"], total_steps,
                                 config["final_lr_fraction"])
    options = {} if epsilon is None else {"epsilon": epsilon}
    model.compile(optimizer=keras.optimizers.Adam(schedule,
                                                  global_clipnorm=config["clip_norm"] or None,
                                                  **options),
                  loss=SmoothedSequenceLoss(config["label_smoothing"]),
                  jit_compile=config["jit_compile"])
    return model


def keras_inputs(batch):
    import tensorflow as tf

    source, target_in, target_out = (tf.constant(x.numpy(), tf.int32) for x in batch)
    return {"source_ids": source, "target_in": target_in}, target_out


def keras_evaluate(model, batches, label_smoothing):
    """Token-weighted label-smoothed loss and NLL, dropout off (as `torch_luong.evaluate`)."""
    import torch
    import torch_luong

    smoothed = nll = tokens = 0.0
    for batch in batches:
        inputs, _ = keras_inputs(batch)
        logits = torch.from_numpy(model(inputs, training=False).numpy())
        target_out = batch[2]
        count = int((target_out != 0).sum())
        smoothed += float(torch_luong.sequence_loss(logits, target_out, label_smoothing)) * count
        nll += float(torch_luong.sequence_loss(logits, target_out, 0.0)) * count
        tokens += count
    return {"loss": smoothed / tokens, "nll": nll / tokens, "perplexity": math.exp(nll / tokens)}


def torch_model(meta, uniform_seed=None, keras_model=None, dropout=None):
    import torch_luong

    model = torch_luong.TorchLuongTranslator(
        meta["vocab_size"], meta["embedding_dim"], meta["encoder_units"],
        meta["encoder_layers"], meta["bidirectional"], meta["decoder_units"],
        meta["dropout"] if dropout is None else dropout)
    if keras_model is not None:
        return torch_luong.port_keras_to_torch(keras_model, model)
    return model.init_uniform(0.1, uniform_seed)


def summarize(losses, valid):
    """Training loss at the checkpoints (the step's own batch and the mean of the 10 steps
    ending there) and the validation figures."""
    out = {}
    for step in CHECKPOINTS:
        if step <= len(losses):
            out[f"step_{step}"] = {"loss": losses[step - 1],
                                   "mean_last_10": float(np.mean(losses[step - 10:step]))}
    out["valid"] = valid
    return out


def run_variant(name, path, meta, steps, total_steps, eval_every, record=None):
    import keras
    import torch
    import torch_luong

    config = meta["config"]
    train = torch_luong.load_batches(path, "train", limit=steps)
    valid = torch_luong.load_batches(path, "valid")
    framework, init = name.split("_", 1)
    init, *groups = init.split("+")
    init, _, adam = init.partition(":")
    keras.utils.set_random_seed(config["seed"])
    torch.manual_seed(config["seed"])
    # `keras_initscale`: the builder's own `init_scale` (0.1) draws the uniform init in Keras.
    keras_model = build_keras(path, keras_init=init != "initscale")
    uniform = torch_model(meta, uniform_seed=config["seed"])
    start = uniform if init == "uinit" else torch_model(meta, keras_model=keras_model)
    # `kinit+group`: Keras' init with that group of weights from the uniform ±0.1 init.
    with torch.no_grad():
        for (weight_name, weight), uniform_weight in zip(start.named_parameters(),
                                                         uniform.parameters(), strict=True):
            if any(in_group(weight_name, group) for group in groups):
                weight.copy_(uniform_weight)
    if framework == "keras" and (init == "uinit" or groups):
        torch_luong.port_torch_to_keras(start, keras_model)
    losses, norms, valid_curve = [], [], {}
    started = time.monotonic()
    if framework == "keras":
        keras_compile(keras_model, config, total_steps)
        for step, batch in enumerate(train, 1):
            losses.append(float(keras_model.train_on_batch(*keras_inputs(batch))))
            if step % eval_every == 0 or step == steps:
                valid_curve[step] = keras_evaluate(keras_model, valid, config["label_smoothing"])
            progress(name, step, losses, started, record)
    else:
        trainer = torch_luong.Trainer(start, config["learning_rate"], config["warmup_steps"],
                                      total_steps, config["final_lr_fraction"],
                                      config["clip_norm"], config["label_smoothing"],
                                      adam=adam or "torch")
        for step, batch in enumerate(train, 1):
            loss, norm = trainer.train_step(*batch)
            losses.append(loss)
            norms.append(norm)
            if step % eval_every == 0 or step == steps:
                valid_curve[step] = torch_luong.evaluate(start, valid,
                                                         config["label_smoothing"])
            progress(name, step, losses, started, record)
    result = summarize(losses, valid_curve[steps])
    result.update({"steps": steps, "seconds": time.monotonic() - started,
                   "valid_curve": valid_curve,
                   "train_losses": [round(x, 5) for x in losses]})
    if norms:
        result["gradient_norms"] = [round(x, 4) for x in norms]
    return result


# Weight groups of the init ablations (torch parameter names; LSTM biases are `bias_ih`, the
# frozen `bias_hh` stay zero).
GROUPS = {
    "embeddings": ("source_embedding.", "target_embedding."),
    "lstm_weights": ("encoder.weight_", "cells.*.weight_"),
    "lstm_biases": ("encoder.bias_ih", "cells.*.bias_ih"),
    "attention": ("query_projection.", "attentional_projection."),
    "output": ("output_projection.",),
}


def in_group(weight_name, group):
    import fnmatch

    if group not in GROUPS:
        raise ValueError(f"unknown weight group {group!r}: {', '.join(GROUPS)}")
    return any(fnmatch.fnmatch(weight_name, pattern + "*") for pattern in GROUPS[group])


def progress(name, step, losses, started, record=None):
    if step % 10 == 0:
        print(f"{name} step {step}: loss {np.mean(losses[-10:]):.4f} "
              f"({(time.monotonic() - started) / step:.2f} s/step)", flush=True)
    if record is not None and step % 50 == 0:  # a killed run leaves its curve so far
        record["variants"][name] = {"partial": True, "steps_done": step,
                                    "train_losses": [round(x, 5) for x in losses]}
        write(record)


def exact_steps(path, meta, steps, total_steps):
    """Dropout off, identical start: Keras vs torch-with-Keras-Adam vs torch Adam."""

    import torch_luong

    config = meta["config"]
    train = torch_luong.load_batches(path, "train", limit=steps)
    results = {}
    for init in ("kinit", "uinit"):
        keras_model = build_keras(path, dropout=0.0)
        if init == "uinit":
            torch_luong.port_torch_to_keras(torch_model(meta, uniform_seed=0, dropout=0.0),
                                            keras_model)
        starts = {kind: torch_model(meta, keras_model=keras_model, dropout=0.0)
                  for kind in ("keras", "torch")}
        keras_compile(keras_model, config, total_steps)
        curves = {"keras": [float(keras_model.train_on_batch(*keras_inputs(b))) for b in train]}
        for kind, model in starts.items():
            trainer = torch_luong.Trainer(model, config["learning_rate"],
                                          config["warmup_steps"], total_steps,
                                          config["final_lr_fraction"], config["clip_norm"],
                                          config["label_smoothing"], adam=kind)
            curves[f"torch_{kind}_adam"] = [trainer.train_step(*b) for b in train]
        norms = [n for _, n in curves["torch_keras_adam"]]
        for kind in ("keras", "torch"):
            curves[f"torch_{kind}_adam"] = [loss for loss, _ in curves[f"torch_{kind}_adam"]]
        # Final weights after the same updates: how far apart did the steps take them?
        final = torch_luong.keras_layout(starts["keras"])
        drift = max(float(np.abs(w.numpy() - final[w.path.split("/", 1)[1]]).max())
                    for w in keras_model.weights)
        results[init] = {"losses": {k: [round(x, 6) for x in v] for k, v in curves.items()},
                         "gradient_norms": [round(x, 4) for x in norms],
                         "max_abs_weight_diff_keras_vs_torch_keras_adam": drift}
    return results


def summary_table(variants):
    """Per variant: mean training loss of the 10 steps ending at 50/100/200/300 (batch-matched
    across variants) and the final validation loss / perplexity."""
    table = {}
    for name, result in sorted(variants.items()):
        losses = result["train_losses"]
        row = {f"train_{step}": round(float(np.mean(losses[step - 10:step])), 3)
               for step in CHECKPOINTS if step <= len(losses)}
        if "valid" in result:
            row["valid_step"] = result.get("steps", len(losses))
            row["valid_loss"] = round(result["valid"]["loss"], 3)
            row["valid_perplexity"] = round(result["valid"]["perplexity"], 1)
        if result.get("partial"):
            row["partial"] = True
        table[name] = row
    return table


def write(record):
    """Merge into the results file (variants other runs wrote since this one began stay)."""
    RESULTS.parent.mkdir(exist_ok=True)
    if RESULTS.exists():
        on_disk = json.loads(RESULTS.read_text())
        record["variants"] = on_disk.get("variants", {}) | record["variants"]
    ordered = {k: v for k, v in record.items()
               if k not in ("summary", "exact_steps", "variants")}
    ordered["summary"] = summary_table(record["variants"])
    if "exact_steps" in record:
        ordered["exact_steps"] = record["exact_steps"]
    ordered["variants"] = record["variants"]
    temporary = RESULTS.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(ordered, indent=1) + "\n")
    temporary.replace(RESULTS)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", default=str(DEFAULT_PATH))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--total-steps", type=int, default=1800,
                        help="schedule length (the 28-minute runs decay over ~1,500-1,860)")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--exact-steps", type=int, default=8, help="0: skip")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import torch
    import torch_luong

    torch.set_num_threads(args.threads)
    meta = torch_luong.batch_meta(args.batches)
    record = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    record.update({"benchmark": "per_step_diagnosis", "date": datetime.date.today().isoformat(),
                   "machine": machine_line(), "torch": torch.__version__,
                   "batches": Path(args.batches).name, "steps": args.steps,
                   "schedule_total_steps": args.total_steps,
                   "config": {k: meta["config"][k] for k in (
                       "learning_rate", "warmup_steps", "final_lr_fraction", "clip_norm",
                       "label_smoothing", "dropout", "batch_size", "seed")}})
    record.setdefault("variants", {})
    if args.exact_steps:
        record["exact_steps"] = exact_steps(args.batches, meta, args.exact_steps,
                                            args.total_steps)
        write(record)
        print(json.dumps(record["exact_steps"], indent=1), flush=True)
    for name in filter(None, args.variants.split(",")):
        base = name.split("+")[0].split(":")[0]
        if base not in VARIANTS:
            parser.error(f"unknown variant {name!r}: {', '.join(VARIANTS)}, optionally "
                         f"':keras' (torch with Keras' Adam formula) and '+group' (that weight "
                         f"group from the uniform init; groups: {', '.join(GROUPS)})")
        record["variants"][name] = run_variant(name, args.batches, meta, args.steps,
                                               args.total_steps, args.eval_every, record)
        write(record)
        print(name, json.dumps({k: v for k, v in record["variants"][name].items()
                                if k not in ("train_losses", "gradient_norms")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
