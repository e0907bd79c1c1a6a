"""What a run ran on (CPU, cores, GPU, library versions), for reports next to the timings.

    python -m hybrid_tevatron.hardware OUT/hardware.json
"""

from __future__ import annotations

import os
import platform
import sys

from hybrid_tevatron.atomic import atomic_write_json


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere what ``platform`` says)."""
    cpu = platform.processor()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    return cpu


def hardware() -> dict:
    import torch
    import transformers

    cpu = cpu_model()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cpu cores available": cores, "torch threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
            "python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m hybrid_tevatron.hardware FILE.json", file=sys.stderr)
        return 2
    atomic_write_json(argv[0], hardware())
    return 0


if __name__ == "__main__":
    sys.exit(main())
