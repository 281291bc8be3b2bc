"""The growth warning for a process on a MIG slice, read live from the stand-in driver: the slice
is the device the process can fill, so the time to full is the slice's free memory over the
rate, and the warning names the slice ("GPU 0:1"), not the parent GPU."""

import dataclasses

import fakenvml
from vramtop.sources.live import LiveSource
from vramtop.telemetry.trend import MemoryTrend


def test_a_process_growing_on_a_slice_is_warned_with_the_slices_free_memory(fake_nvml):
    scenario = fakenvml.a100_mig(fake_nvml.path)
    scenario.write()  # before the source opens: it reads the GPUs and their MIG mode then
    mig = scenario.gpus[0].migs[1]
    trend = MemoryTrend()
    warnings = ()
    with fakenvml.spawn_processes("python3 notebook.py") as (notebook,):
        source = LiveSource()
        try:
            for step in range(8):  # 1 GiB more every 10 s
                held = 1_024 * (step + 1)
                scenario.processes.clear()
                scenario.add_process(0, notebook, held, mig=1)
                mig.used, mig.free = (13 + held) * fakenvml.MIB, (40_179 - held) * fakenvml.MIB
                scenario.write()
                snap = source.sample()
                warnings = trend.update(dataclasses.replace(snap, timestamp=1_000.0 + 10 * step))
        finally:
            source.close()
    (warning,) = warnings
    free = 40_179 - 8 * 1_024  # the slice's, far less than the parent GPU's
    assert warning.pid == notebook and round(warning.mib_per_s, 1) == 102.4
    assert abs(warning.seconds_to_full - free / 102.4) < 1
    assert "GPU 0:1 full in about 5 min" in warning.message
