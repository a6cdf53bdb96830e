"""Analytic matmul FLOPs of the RNN translators and this CPU's peak FLOP/s.

Counts multiply-adds of every matrix product (2 FLOPs each) in one teacher-forced training
step; elementwise ops, softmax and the optimizer are left out (they are a few percent). The
backward pass costs two matmuls per forward one (input and weight gradients): a step is 3×
the forward.
"""

import re
import subprocess
from pathlib import Path


def translator_forward_flops(config, batch, source_length, target_length):
    """Forward matmul FLOPs of an `RNNTranslator` (Luong general attention, input feeding) for
    one padded batch `[batch, source_length]` → `[batch, target_length]`."""
    e = config["embedding_dim"]
    u = config["encoder_units"]
    layers = config["encoder_layers"]
    directions = 2 if config["bidirectional"] else 1
    d = config["decoder_units"]
    v = config["vocab_size"]
    macs = 0
    width = e
    for _ in range(layers):  # encoder: 4 gates × (input + recurrent) per direction
        macs += directions * source_length * 4 * u * (width + u)
        width = u * directions
    memory = u * directions
    per_step = 0
    width = e + d  # input feeding: [y_{t-1}; h̃_{t-1}]
    for _ in range(layers):
        per_step += 4 * d * (width + d)
        width = d
    per_step += d * memory  # W_a h_t (Luong general)
    per_step += 2 * source_length * memory  # scores and context
    per_step += (memory + d) * d  # h̃ = tanh(W_c [c; h])
    per_step += d * v  # output projection
    macs += target_length * per_step
    return 2 * batch * macs


def training_step_flops(config, batch, source_length, target_length):
    return 3 * translator_forward_flops(config, batch, source_length, target_length)


def cpu_peak_flops():
    """`(peak FLOP/s, explanation)`: cores × FP32 FLOPs per cycle per core × max clock.

    FLOPs per cycle: 2 FMA pipes × vector lanes × 2 (multiply + add). AMD Zen 4 runs AVX-512 on
    256-bit pipes (8 FP32 lanes per pipe, 32 FLOPs/cycle); Intel server cores with two 512-bit
    FMA units reach 64; AVX2-only cores 32. The clock is lscpu's max MHz (else its current MHz,
    else /proc/cpuinfo's)."""
    info = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    field = {k.strip(): v.strip() for k, v in
             (line.split(":", 1) for line in info.splitlines() if ":" in line)}
    cores = int(field.get("CPU(s)", "1"))
    flags = field.get("Flags", "")
    vendor = field.get("Vendor ID", "")
    mhz = None
    for key in ("CPU max MHz", "CPU MHz"):
        if field.get(key):
            mhz = float(field[key])
            break
    if mhz is None:
        try:
            text = Path("/proc/cpuinfo").read_text()
            found = re.findall(r"cpu MHz\s*:\s*([\d.]+)", text)
            mhz = max(float(x) for x in found) if found else None
        except OSError:
            pass
    if "avx512f" in flags and vendor != "AuthenticAMD":
        per_cycle, why = 64, "2 × 512-bit FMA = 64 FP32 FLOPs/cycle"
    elif "avx512f" in flags or "avx2" in flags:
        per_cycle, why = 32, "2 × 256-bit FMA pipes = 32 FP32 FLOPs/cycle" + (
            " (AMD: AVX-512 on 256-bit pipes)" if "avx512f" in flags else "")
    else:
        per_cycle, why = 16, "SSE: 16 FP32 FLOPs/cycle"
    if mhz is None:
        return None, f"{cores} cores × {why} × unknown clock (lscpu shows no MHz)"
    peak = cores * per_cycle * mhz * 1e6
    return peak, f"{cores} cores × {why} × {mhz:.0f} MHz = {peak / 1e9:.0f} GFLOP/s"


if __name__ == "__main__":
    import zoo

    config = zoo.resolve_config("luong_translator")
    flops = training_step_flops(config, 64, 16, 16)
    print(f"luong_translator training step, batch 64 × 16 → 16: {flops / 1e9:.1f} GFLOP")
    print(cpu_peak_flops()[1])
