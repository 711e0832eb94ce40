"""The CPU check that runs before xllamacpp is imported (s2a/local/cpu.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from s2a.local.cpu import UnsupportedCPUError, check_cpu, cpu_flags, cpu_model, missing_instructions
from s2a.local.model import ModelError

HASWELL = "processor\t: 0\nflags\t\t: fpu sse sse2 pni ssse3 sse4_1 sse4_2 avx avx2 fma f16c bmi1 bmi2\n"
SAPPHIRE_RAPIDS = HASWELL.replace("bmi2", "bmi2 avx512f avx512bw avx512_vnni amx_tile amx_int8 amx_bf16")
NEHALEM = "processor\t: 0\nflags\t\t: fpu sse sse2 pni ssse3 sse4_1 sse4_2 popcnt\n"
SANDY_BRIDGE = NEHALEM.replace("popcnt", "popcnt avx")
ARM64 = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n"


def test_flags_are_read_from_the_first_processor() -> None:
    assert {"avx2", "bmi2", "pni"} <= cpu_flags(HASWELL)
    assert cpu_flags("model name: nothing useful\n") == set()


def test_the_model_name_is_read_from_the_first_processor_and_may_be_absent() -> None:
    two = "model name\t: Intel(R) Xeon(R) Processor\n" + HASWELL + "model name\t: Other\n"
    assert cpu_model(two) == "Intel(R) Xeon(R) Processor"
    assert cpu_model(ARM64) is None
    assert cpu_model("model name\t:   \n") is None


@pytest.mark.parametrize("cpuinfo", [HASWELL, SAPPHIRE_RAPIDS])
def test_avx2_cpus_run_the_wheel_avx512_and_amx_included(cpuinfo: str) -> None:
    assert missing_instructions("x86_64", cpuinfo) == []
    check_cpu("x86_64", cpuinfo)


@pytest.mark.parametrize(
    ("cpuinfo", "missing"),
    [(NEHALEM, ["AVX", "AVX2", "FMA", "F16C", "BMI2"]), (SANDY_BRIDGE, ["AVX2", "FMA", "F16C", "BMI2"])],
)
def test_a_cpu_without_avx2_is_refused_with_what_it_lacks(cpuinfo: str, missing: list[str]) -> None:
    assert missing_instructions("x86_64", cpuinfo) == missing
    with pytest.raises(UnsupportedCPUError, match="this CPU lacks " + ", ".join(missing)) as caught:
        check_cpu("x86_64", cpuinfo)
    assert "--tgi-url" in str(caught.value)
    assert isinstance(caught.value, ModelError)  # the CLI reports it as an error, exit 1


@pytest.mark.parametrize("machine", ["aarch64", "arm64"])
def test_arm64_needs_nothing_beyond_armv8(machine: str) -> None:
    check_cpu(machine, ARM64)


def test_unknown_flags_are_not_a_refusal() -> None:
    check_cpu("x86_64", "")  # no flags line (a container hiding them): let llama.cpp decide


def test_this_machine_passes() -> None:
    check_cpu()  # the suite's integration tests run the real model here
    assert Path("/proc/cpuinfo").exists()
