"""The precision a run trains in: the config's `precision`, unless the machine would make
`mixed_bfloat16` slower instead of faster."""

import functools
import warnings
from pathlib import Path

import tensorflow as tf

# The CPU features with bfloat16 arithmetic that oneDNN uses (Linux /proc/cpuinfo flags).
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def native_bfloat16(cpuinfo="/proc/cpuinfo"):
    """Whether bfloat16 matmuls run in hardware here: a visible GPU, or a CPU with AVX512-BF16
    or AMX. Elsewhere (an AVX2-only CPU, e.g. AMD EPYC Zen 3) TensorFlow's Eigen kernels
    emulate bfloat16 matmuls: a 16 M-parameter responder's train step measured 0.1 steps/s
    against 0.5 in float32 (AMD EPYC Zen 3, 2 cores). True where the CPU's flags cannot be
    read (not Linux): the config's choice stands."""
    if tf.config.list_physical_devices("GPU"):
        return True
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return True
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return any(flag in flags for flag in BFLOAT16_CPU_FLAGS)


def training_precision(config):
    """The dtype policy to train `config` in: its `precision`, except that `mixed_bfloat16`
    becomes float32 (with a warning) where bfloat16 is not `native_bfloat16`. Only speed
    changes: the variables and the loss are float32 either way."""
    precision = config.get("precision", "float32")
    if precision == "mixed_bfloat16" and not native_bfloat16():
        warnings.warn("precision: mixed_bfloat16 asked for, but this CPU has no bfloat16 "
                      f"arithmetic ({' or '.join(BFLOAT16_CPU_FLAGS)}): training in float32, "
                      "which is faster here", stacklevel=2)
        return "float32"
    return precision
