"""Evaluation, in the order a run goes through it (``python -m hybrid_tevatron.eval lareqa|captions|miracl|images``):

* :mod:`~hybrid_tevatron.eval.program`: the one program (arguments, stages, timings), with ``runner`` (our and
  Pyserini's CLIs in process, every command in ``commands.sh``) and ``output`` (the output folder, written whole);
* ``benchmarks/``: a benchmark's inputs for Pyserini: LAReQA (XQuAD-R, MLQA-R) and MIRACL topics, qrels, corpora
  (caption pools are data: :mod:`hybrid_tevatron.data.captions`);
* ``pipeline/``: what runs on them: the search plan (``search_plan``), encoding into Faiss indexes (``encode``),
  the exact whole-pool ranks (``ranks``), Pyserini's top-k search (``search``), trec_eval (``trec_eval``,
  ``scoring``);
* ``reports/``: metrics and language bias (``metrics``), results files, tables and plots (``evaluate``,
  ``report``).

The studies that run many trainings and evaluations live in :mod:`hybrid_tevatron.studies`.
"""

import importlib
import importlib.abc
import importlib.util
import sys

# One-release aliases: module -> where it moved when eval/ was split into layers. ``python -m`` and imports by the
# old name keep working (the same module object), with a note on stderr.
MOVED = {
    "lareqa": "eval.benchmarks.lareqa", "miracl": "eval.benchmarks.miracl",
    "plan": "eval.pipeline.search_plan", "indexing": "eval.pipeline.encode", "search": "eval.pipeline.search",
    "ranks": "eval.pipeline.ranks", "scoring": "eval.pipeline.scoring", "trec_eval": "eval.pipeline.trec_eval",
    "metrics": "eval.reports.metrics", "evaluate": "eval.reports.evaluate", "report": "eval.reports.report",
    "reproduction": "studies.reproduction", "domain_study": "studies.domain_study",
    "domain_grid": "studies.domain_grid", "domain_tables": "studies.domain_tables",
    "check_expected": "studies.check_expected", "study_records": "studies.records",
}


class _MovedLoader(importlib.abc.Loader):
    def __init__(self, new: str):
        self.new = new

    def create_module(self, spec):
        return importlib.import_module(self.new)

    def exec_module(self, module):
        pass

    def get_code(self, fullname):  # python -m OLD runs the new module's code as __main__
        return importlib.util.find_spec(self.new).loader.get_code(self.new)


_NOTED: set = set()


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.rpartition(".")
        if package != __name__ or name not in MOVED:
            return None
        new = f"hybrid_tevatron.{MOVED[name]}"
        if fullname not in _NOTED:
            _NOTED.add(fullname)
            print(f"note: {fullname} is now {new}; the old name goes in the next release", file=sys.stderr)
        return importlib.util.spec_from_loader(fullname, _MovedLoader(new),
                                               origin=importlib.util.find_spec(new).origin)


sys.meta_path.append(_MovedFinder())
