"""Whether this machine can run the llama.cpp that xllamacpp ships, checked before it is imported.

xllamacpp's Linux and Windows x86-64 wheels are compiled once for a fixed instruction set
(SSE3, SSSE3, AVX, AVX2, FMA, F16C, BMI2: what `xllamacpp.get_system_info()` lists), not for
the machine that builds them and without AVX-512 or AMX code. So they run the same code on an
AVX-512/AMX Xeon as on a laptop, but a CPU without AVX2 (older Pentiums and Celerons, Atoms, a
virtual machine with a generic CPU model) would die on an illegal instruction at import. This
module reads the CPU's flags first and refuses with a message instead. The arm64 Linux wheel
targets plain ARMv8-A, which every 64-bit ARM CPU has; macOS wheels are built per architecture.
"""

from __future__ import annotations

import importlib
import platform
import sys
from pathlib import Path
from types import ModuleType

from s2a.local.model import ModelError

X86_FLAGS = {
    "pni": "SSE3",
    "ssse3": "SSSE3",
    "avx": "AVX",
    "avx2": "AVX2",
    "fma": "FMA",
    "f16c": "F16C",
    "bmi2": "BMI2",
}
"""`/proc/cpuinfo` flag: instruction set, for what the x86-64 wheels are compiled with."""
_X86_MACHINES = {"x86_64", "amd64"}


class UnsupportedCPUError(ModelError):
    """The CPU lacks instructions the prebuilt llama.cpp needs."""


def cpu_flags(cpuinfo: str) -> set[str]:
    """The feature flags of the first processor in a `/proc/cpuinfo` text."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in {"flags", "Features"}:
            return set(value.split())
    return set()


def cpu_model(cpuinfo: str | None = None) -> str | None:
    """The first processor's model name in a `/proc/cpuinfo` text (this machine's by default)."""
    for line in (cpuinfo if cpuinfo is not None else _read_cpuinfo() or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return None


def missing_instructions(machine: str, cpuinfo: str | None) -> list[str]:
    """The instruction sets the wheel needs that this CPU lacks (empty when unknown or fine)."""
    if machine.lower() not in _X86_MACHINES or cpuinfo is None:
        return []
    flags = cpu_flags(cpuinfo)
    if not flags:  # no flags line: nothing to judge by
        return []
    return [name for flag, name in X86_FLAGS.items() if flag not in flags]


def _read_cpuinfo() -> str | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return None


def check_cpu(machine: str | None = None, cpuinfo: str | None = None) -> None:
    """Raise `UnsupportedCPUError` if the prebuilt llama.cpp cannot run on this CPU.

    Both arguments default to this machine's; tests pass others.
    """
    machine = machine or platform.machine()
    missing = missing_instructions(machine, cpuinfo if cpuinfo is not None else _read_cpuinfo())
    if missing:
        msg = (
            f"this CPU lacks {', '.join(missing)}, which the prebuilt llama.cpp in xllamacpp needs "
            "(x86-64 with AVX2, Intel since 2013 or AMD since 2015), so the local model cannot run "
            "here. Use a text-generation-inference server instead (--tgi-url), or build xllamacpp "
            "from source for this CPU (see docs/local-server.md)."
        )
        raise UnsupportedCPUError(msg)


def load_xllamacpp() -> ModuleType:
    """Import xllamacpp once the CPU is known to run it; every failure is a `ModelError` saying what to do."""
    check_cpu()
    try:
        return importlib.import_module("xllamacpp")
    except ImportError as exc:
        text = str(exc)
        if "libgomp" in text:
            msg = (
                f"xllamacpp needs the GNU OpenMP runtime, which this system lacks ({text}). "
                "Install it (Debian/Ubuntu: apt install libgomp1; Fedora: dnf install libgomp)."
            )
        else:
            msg = (
                f"the local model needs xllamacpp, which cannot be imported ({text}). "
                'Install it with: pip install -e ".[local]"'
            )
        raise ModelError(msg) from exc
