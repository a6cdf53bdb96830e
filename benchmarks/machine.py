"""One line describing the machine a benchmark ran on: the CPU model as `lscpu` names it, and
where that name is only the vendor's family ("AMD EPYC" in these VMs) its family/model numbers
and widest vector extensions too — XLA's and PyTorch's relative speed differ between an AVX2
Zen 3 and an AVX-512/bfloat16 Zen 4 that both call themselves "AMD EPYC"."""

import os
import platform
import subprocess
from pathlib import Path


def _cpuinfo_details():
    """`family F model M, AVX2` / `..., AVX-512, AVX512-BF16` from /proc/cpuinfo (or "")."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    extensions = [name for flag, name in (("avx2", "AVX2"), ("avx512f", "AVX-512"),
                                          ("avx512_bf16", "AVX512-BF16"), ("amx_bf16", "AMX"))
                  if flag in flags]
    if "cpu family" not in fields:
        return ""
    return ", ".join([f"family {fields['cpu family']} model {fields.get('model', '?')}",
                      *extensions])


def machine_line():
    model = platform.processor() or "unknown CPU"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False)
        for line in lscpu.stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    details = _cpuinfo_details()
    if details:
        model = f"{model} ({details})"
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}"
