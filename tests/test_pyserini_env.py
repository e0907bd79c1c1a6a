"""The Java set-up for Pyserini (hybrid_tevatron._pyserini_env): the JVM started inside Python leaves SIGINT and
SIGTERM to Python (-Xrs), whichever module starts the set-up, so a signal stops a process that runs Pyserini."""

import signal
import subprocess
import sys
import time

import pytest
from helpers import recipe_env

FIRST_IMPORTS = {
    "jnius_config first": "import jnius_config",
    "pyserini first": "import pyserini",
    "configure() first": "from hybrid_tevatron._pyserini_env import configure; configure()",
}
# start the JVM in this process (Pyserini's Lucene classes), report its options, then wait for a signal
PROBE = """
import sys
{first}
from pyserini.search.lucene import LuceneSearcher
from jnius import autoclass
args = autoclass("java.lang.management.ManagementFactory").getRuntimeMXBean().getInputArguments().toString()
caught = int(next(l for l in open("/proc/self/status") if l.startswith("SigCgt")).split()[1], 16)
print(args, "TERM-caught" if caught >> (15 - 1) & 1 else "TERM-default", flush=True)
import time
time.sleep(120)
"""


@pytest.mark.parametrize("first", sorted(FIRST_IMPORTS))
def test_jvm_in_python_leaves_sigterm_to_python(first):
    proc = subprocess.Popen([sys.executable, "-c", PROBE.format(first=FIRST_IMPORTS[first])], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=recipe_env())
    try:
        line = proc.stdout.readline()
        assert "-Xrs" in line and "TERM-default" in line, (line, proc.stderr.read() if proc.poll() else "")
        proc.send_signal(signal.SIGTERM)
        sent = time.time()
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGTERM and time.time() - sent < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_reaches_python_while_the_jvm_runs():
    """Python runs its SIGINT handler in the main thread between bytecodes; the kernel may deliver the signal to a
    JVM thread, which does not interrupt a long sleep of the main thread, so the probe waits in short steps (as the
    evaluation's stages do, between Pyserini calls), inside the try from before it reports."""
    # a background job of a shell (CI run with `&`) starts with SIGINT ignored, and Python then keeps ignoring it:
    # install Python's own handler first, so the test asks only whether the JVM leaves the signal to Python
    first = "import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)"
    code = PROBE.format(first=first).replace("print(args", "try:\n  print(args").replace(
        "\nimport time\ntime.sleep(120)",
        "\n  import time\n  for _ in range(1200):\n    time.sleep(0.1)\nexcept KeyboardInterrupt:\n"
        "  print('interrupted', flush=True)\n  sys.exit(130)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=recipe_env())
    try:
        assert "-Xrs" in proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130 and "interrupted" in out, err[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
