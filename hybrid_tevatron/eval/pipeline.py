"""Steps of the Pyserini evaluation recipes (``recipes/eval_lareqa.sh``, ``recipes/eval_miracl.sh``).

    python -m hybrid_tevatron.eval.pipeline encoding --model M [--pooling ...] --output encoding.json
    python -m hybrid_tevatron.eval.pipeline plan-lareqa --manifest INPUTS [--output INPUTS/plan.json]
    python -m hybrid_tevatron.eval.pipeline list --plan PLAN corpora|queries|merged
    python -m hybrid_tevatron.eval.pipeline run JOBS_FILE [--cli inprocess|subprocess] [--cwd DIR]
    python -m hybrid_tevatron.eval.pipeline search --plan PLAN --index_root I --queries_root Q --runs_dir R \\
        [--first_pass_hits 500]
    python -m hybrid_tevatron.eval.pipeline trec-eval --plan PLAN --runs_dir R --output_dir E
    python -m hybrid_tevatron.eval.pipeline crosscheck --manifest INPUTS --runs_dir R --trec_eval_dir E --output F

**encoding** resolves how the model encodes (pooling, L2 normalisation, prefixes, max lengths): the model folder's
``hybrid_tevatron.json`` (written by the trainer) first, command-line values over it; without that file
``--pooling`` and ``--normalize``/``--no-normalize`` are required. It also checks the model folder (config, weights,
a loadable tokenizer) and reads the real embedding size. Output: ``encoding.json`` + ``KEY=value`` shell lines.

**run** executes a file of ``python -m MODULE ARGS`` lines (the recipes' encoding jobs) the same way.
**search** and **trec-eval** run Pyserini's own command-line programs, ``python -m pyserini.search.faiss`` and
``python -m pyserini.eval.trec_eval``, once per search of a plan. ``--cli inprocess`` (the default) executes the
module's ``__main__`` with ``runpy`` in this process, exactly as ``python -m`` would, so Pyserini's ~8 s import
cost is paid once instead of once per search (XQuAD-R has 132 searches); ``--cli subprocess`` starts one
``python -m`` process per command. Every command is appended, shell-quoted, to ``--commands`` (a replayable log).

**Compaction** (LAReQA searches, ``"compact": true``): mAP is over the full ranking, so every relevant passage
needs its rank in the whole pool. Each run is cut after each query's last relevant passage in trec_eval order,
keeping every line tied with it on the written score and at least the top ``MIN_DEPTH``; ranks of relevant passages
are unchanged by the cut, so mAP, R@k, nDCG@10 and the rank distance are exactly those of the full ranking, while an
XQuAD-R multilingual run shrinks from 15.5 M lines (~0.8 GB) per query language to a few MB.

**Two passes** (``--first_pass_hits``, default ``FIRST_PASS_HITS``): writing full-pool rankings dominates the
search time (MLQA-R: 140 M lines, 3 % of them kept). The first pass searches ``--hits`` = first_pass_hits; a query
whose cut it settles (every relevant passage retrieved, and a line below the cut that scores lower than the last
relevant one, so nothing outside the list can tie or outrank it) is final. The others are searched again over the
whole pool (``--hits`` = pool size, their topics in ``runs/deep/NAME.tsv``). Faiss's flat search is exact, so the
compacted run scores exactly like the single full-pool pass (``--first_pass_hits 0``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import runpy
import shlex
import subprocess
import sys
import time

from hybrid_tevatron.eval import atomic_path, atomic_write_json, atomic_write_text

PLAN_FORMAT = "hybrid_tevatron.search_plan/1"
LAREQA_TREC_EVAL_ARGS = ["-c", "-q", "-m", "map", "-m", "recall.1,10", "-m", "ndcg_cut.10"]
MIN_DEPTH = 100
FIRST_PASS_HITS = 500  # compacted searches: depth of the first pass (0: one pass over the whole pool)
COMPACTION_FILE = "compaction.json"  # in the runs folder: what was cut, per run
SEARCH_BATCH = 64
ENCODING_KEYS = ("pooling", "normalize", "query_prefix", "passage_prefix", "query_max_len", "passage_max_len")
DEFAULT_MAX_LEN = {"query_max_len": 32, "passage_max_len": 128}  # the trainer's defaults (arguments.py)


TOKENIZER_PROBE = "the cat"


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class StepError(RuntimeError):
    """A failed step; the message says what and where."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------- encoding


def check_model(model: str) -> dict:
    """Check a local model folder (or a Hub id); return ``{"hidden_size": int, "model_type": str}``.

    The folder needs config, weights and a tokenizer with its vocabulary (:mod:`hybrid_tevatron.model_files`, the
    one place for those rules); the tokenizer must load, and its vocabulary must fit the model's embeddings."""
    from hybrid_tevatron.model_files import ModelFolderError, check_model as check_model_files

    try:
        check_model_files(model)
    except ModelFolderError as err:
        raise StepError(str(err)) from None
    from transformers import AutoConfig, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(model)
    except Exception as err:  # noqa: BLE001 - any loading problem is reported the same way
        raise StepError(f"{model}: cannot load the model config: {_first_line(err)}") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
        probe = tokenizer(TOKENIZER_PROBE, add_special_tokens=False)["input_ids"]
    except Exception as err:  # noqa: BLE001
        raise StepError(f"{model}: cannot load the tokenizer: {type(err).__name__}: {_first_line(err)}") from None
    vocab = getattr(config, "vocab_size", None)
    if isinstance(vocab, int) and len(tokenizer) > vocab:
        raise StepError(f"{model}: the tokenizer has {len(tokenizer)} tokens but the model only {vocab} embeddings; "
                        "save the model's own tokenizer with it")
    if not probe or all(i == tokenizer.unk_token_id for i in probe):
        raise StepError(f"{model}: the tokenizer knows no word of {TOKENIZER_PROBE!r} (every token is unknown); "
                        "save the model's own tokenizer with it (tokenizer.save_pretrained(folder))")
    hidden = getattr(config, "hidden_size", None) or getattr(config, "d_model", None)
    if not isinstance(hidden, int) or hidden < 1:
        raise StepError(f"{model}: config has no hidden_size")
    return {"hidden_size": hidden, "model_type": getattr(config, "model_type", "")}


def _to_bool(value, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
        return False
    raise StepError(f"{where}: expected true/false, got {value!r}")


def resolve_encoding(model: str, overrides: dict, encoder: str = "pyserini") -> dict:
    """Encoding settings: ``{model}/hybrid_tevatron.json``, then ``overrides`` (non-None values) over it."""
    info = check_model(model)
    saved_path = os.path.join(model, "hybrid_tevatron.json")
    saved = {}
    if os.path.isfile(saved_path):
        try:
            with open(saved_path, encoding="utf-8") as f:
                saved = json.load(f)
        except (OSError, json.JSONDecodeError) as err:
            raise StepError(f"{saved_path}: unreadable: {err}") from None
        if not isinstance(saved, dict):
            raise StepError(f"{saved_path}: expected a JSON object")
        if "normalize" not in saved and "l2_norm" in saved:
            saved["normalize"] = saved["l2_norm"]
    enc, source = {}, {}
    for key in ENCODING_KEYS:
        if overrides.get(key) is not None:
            enc[key], source[key] = overrides[key], "command line"
        elif saved.get(key) is not None:
            enc[key], source[key] = saved[key], saved_path
    missing = [k for k in ("pooling", "normalize") if k not in enc]
    if missing:
        raise StepError(
            f"{model}: no hybrid_tevatron.json with the training settings, so pass them explicitly: "
            + " and ".join({"pooling": "--pooling cls|mean", "normalize": "--normalize or --no-normalize"}[k]
                           for k in missing)
            + " (and --query_prefix/--passage_prefix/--query_max_len/--passage_max_len if training used them)")
    enc["normalize"] = _to_bool(enc["normalize"], "normalize")
    for key in ("query_prefix", "passage_prefix"):
        enc.setdefault(key, "")
        source.setdefault(key, "default")
        if not isinstance(enc[key], str):
            raise StepError(f"{key}: expected a string, got {enc[key]!r}")
    for key, default in DEFAULT_MAX_LEN.items():
        if key not in enc:
            enc[key], source[key] = default, "default"
        try:
            enc[key] = int(enc[key])
        except (TypeError, ValueError):
            raise StepError(f"{key}: expected an integer, got {enc[key]!r}") from None
        if enc[key] < 1:
            raise StepError(f"{key}: must be >= 1, got {enc[key]}")
    if enc["pooling"] not in ("cls", "mean"):
        raise StepError(f"pooling {enc['pooling']!r} is not supported by the evaluation encoders (cls or mean)")
    if encoder not in ("ours", "pyserini"):
        raise StepError(f"encoder must be 'ours' or 'pyserini', got {encoder!r}")
    enc["pyserini_query_prefix"] = pyserini_prefix(enc["query_prefix"], "query_prefix")
    enc["pyserini_passage_prefix"] = pyserini_prefix(enc["passage_prefix"], "passage_prefix")
    return {"model": os.path.abspath(model) if os.path.isdir(model) else model, **info, **enc,
            "encoder": encoder, "source": source}


def pyserini_prefix(prefix: str, name: str) -> str:
    """Pyserini's Auto encoders prepend ``f"{prefix} {text}"``: pass the prefix without its trailing space."""
    if not prefix:
        return ""
    if not prefix.endswith(" "):
        raise StepError(f"{name} {prefix!r} does not end with a space: Pyserini's encoders always put one space "
                        "between prefix and text, so they cannot reproduce it; use ENCODER=ours")
    return prefix[:-1]


def _shell_lines(values: dict) -> str:
    out = []
    for key, value in values.items():
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, (str, int)):
            out.append(f"{key.upper()}={shlex.quote(str(value))}")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------------------------- plans


def load_plan(path: str) -> dict:
    if os.path.isdir(path):
        path = os.path.join(path, "plan.json")
    try:
        with open(path, encoding="utf-8") as f:
            plan = json.load(f)
    except FileNotFoundError:
        raise StepError(f"{path}: plan not found") from None
    except json.JSONDecodeError as err:
        raise StepError(f"{path}: malformed JSON: {err}") from None
    if plan.get("format") != PLAN_FORMAT:
        raise StepError(f"{path}: not a {PLAN_FORMAT} file")
    plan["root"] = os.path.dirname(os.path.abspath(path))
    return plan


def plan_from_lareqa(manifest_path: str) -> dict:
    """A search plan for a LAReQA manifest: one index per language + the merged ``all``; full-pool searches."""
    from hybrid_tevatron.eval.lareqa import load_manifest

    manifest = load_manifest(manifest_path)
    langs = manifest["languages"]
    corpora = {f"lang/{lang}": manifest["corpora"][lang] for lang in langs}
    searches = []
    for s in manifest["searches"]:
        searches.append({
            "name": s["name"], "setting": s["setting"],
            "index": "all" if s["pool"] == "all" else f"lang/{s['pool']}",
            "queries": s["query_lang"], "topics": s["topics"], "qrels": s["qrels"],
            "hits": s["pool_size"], "compact": True, "run": s["run"],
        })
    return {
        "format": PLAN_FORMAT, "kind": "lareqa", "dataset": manifest["dataset"],
        "corpora": corpora,
        "merged": {"all": sorted(corpora)},
        "queries": {lang: manifest["topics"][lang]["path"] for lang in langs},
        "trec_eval_args": [LAREQA_TREC_EVAL_ARGS],
        "searches": searches,
    }


def write_plan(plan: dict, path: str) -> str:
    plan = {k: v for k, v in plan.items() if k != "root"}
    return atomic_write_json(path, plan)


# ----------------------------------------------------------------------------------------------- running CLIs


class CliRunner:
    """Run ``python -m MODULE ARGS`` in this process (runpy) or as a subprocess; log every command."""

    def __init__(self, mode: str = "inprocess", commands_log: str | None = None, cwd: str | None = None):
        if mode not in ("inprocess", "subprocess"):
            raise StepError(f"--cli must be inprocess or subprocess, got {mode!r}")
        self.mode, self.commands_log, self.cwd = mode, commands_log, cwd

    def _record(self, module: str, argv: list[str]) -> str:
        line = " ".join(shlex.quote(a) for a in ["python", "-m", module, *argv])
        if self.commands_log:
            with open(self.commands_log, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        return line

    def run(self, module: str, argv: list[str], capture: bool = False) -> str:
        argv = [str(a) for a in argv]
        line = self._record(module, argv)
        if self.mode == "subprocess":
            proc = subprocess.run([sys.executable, "-m", module, *argv], cwd=self.cwd, text=True,
                                  stdout=subprocess.PIPE if capture else None)
            if proc.returncode != 0:
                raise StepError(f"command failed with exit code {proc.returncode}: {line}")
            return proc.stdout or ""
        from hybrid_tevatron._pyserini_env import configure

        configure()
        old_argv, old_cwd = sys.argv, os.getcwd()
        buf = io.StringIO()
        try:
            if self.cwd:
                os.chdir(self.cwd)
            sys.argv = [module, *argv]
            with contextlib.redirect_stdout(buf) if capture else contextlib.nullcontext():
                runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as err:
            if err.code not in (None, 0):
                raise StepError(f"command failed with exit code {err.code}: {line}") from None
        except Exception as err:  # noqa: BLE001 - report any failure of the CLI with its command
            raise StepError(f"command failed ({type(err).__name__}: {err}): {line}") from err
        finally:
            sys.argv = old_argv
            os.chdir(old_cwd)
        return buf.getvalue()


def run_jobs(jobs_path: str, runner: CliRunner, label: str = "job") -> int:
    """Run every ``python -m MODULE ARGS`` line of ``jobs_path`` (shell-quoted, as ``printf %q`` writes them)."""
    with open(jobs_path, encoding="utf-8") as f:
        jobs = [shlex.split(line) for line in f if line.strip() and not line.lstrip().startswith("#")]
    for n, words in enumerate(jobs, 1):
        if len(words) < 3 or words[1] != "-m" or os.path.basename(words[0]) not in ("python", "python3"):
            raise StepError(f"{jobs_path}: job {n} is not 'python -m MODULE ...': {' '.join(words)}")
        start = time.time()
        runner.run(words[2], words[3:])
        log(f"{label} [{n}/{len(jobs)}] python -m {words[2]} ({time.time() - start:.1f}s)")
    return len(jobs)


# ----------------------------------------------------------------------------------------------- runs


def read_qids(topics_path: str) -> list[str]:
    with open(topics_path, encoding="utf-8") as f:
        return [line.split("\t", 1)[0].strip() for line in f if line.strip()]


def _read_qrels_relevant(path: str) -> dict[str, set[str]]:
    from hybrid_tevatron.eval.metrics import read_qrels

    return {q: {d for d, rel in docs.items() if rel > 0} for q, docs in read_qrels(path).items()}


def compact_run(src: str, out, relevant: dict[str, set[str]], min_depth: int = MIN_DEPTH,
                hits: int | None = None) -> dict:
    """Write to the file ``out`` each query's ranking of ``src`` cut after its last relevant passage (trec_eval
    order, ties on the written score kept, at least ``min_depth`` lines).

    ``src`` must list each query's lines together in descending score order (Pyserini does). ``hits``: the depth
    ``src`` was searched to when that is less than the whole pool (at least ``min_depth``). A query whose cut that
    depth cannot settle (a relevant passage not retrieved, or lines tied with the cut score down to the last line)
    is not written but listed in ``"open"``, as are queries of ``relevant`` absent from ``src``; without ``hits``
    those absent queries are an error. Returns ``{"queries", "lines_in", "lines_out", "open"}``.
    """
    stats = {"queries": 0, "lines_in": 0, "lines_out": 0, "open": []}
    seen: set[str] = set()

    def flush(qid, lines):
        rel = relevant.get(qid, set())
        last, found = -1, 0
        for i, (docid, _score, _line) in enumerate(lines):
            if docid in rel:
                last, found = i, found + 1
        keep = max(min(min_depth, len(lines)), last + 1)
        if last >= 0:
            cut_score = lines[last][1]
            while keep < len(lines) and lines[keep][1] >= cut_score:
                keep += 1
        if hits is not None and len(lines) >= hits and (found < len(rel) or (rel and keep == len(lines))):
            stats["open"].append(qid)
            return
        for _d, _s, line in lines[:keep]:
            out.write(line)
        stats["queries"] += 1
        stats["lines_out"] += keep

    with open(src, encoding="utf-8") as f:
        qid, lines, prev = None, [], None
        for n, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise StepError(f"{src}:{n}: expected 'qid Q0 docid rank score tag', got {line.rstrip()!r}")
            q, d, s = parts[0], parts[2], float(parts[4])
            stats["lines_in"] += 1
            if q != qid:
                if qid is not None:
                    flush(qid, lines)
                if q in seen:
                    raise StepError(f"{src}:{n}: query {q} appears again after other queries")
                seen.add(q)
                qid, lines, prev = q, [], None
            if prev is not None and s > prev:
                raise StepError(f"{src}:{n}: scores of query {q} are not in descending order")
            prev = s
            lines.append((d, s, line if line.endswith("\n") else line + "\n"))
        if qid is not None:
            flush(qid, lines)
    missing = sorted(set(relevant) - seen)
    if missing and hits is None:
        raise StepError(f"{src}: {len(missing)} queries of the qrels have no results, e.g. {missing[:3]}")
    stats["open"] += missing
    return stats


def write_topics_subset(topics: str, qids, dst: str) -> None:
    """The lines of the topics file ``topics`` whose query id is in ``qids``, in file order, to ``dst``."""
    wanted = set(qids)
    with open(topics, encoding="utf-8") as f:
        lines = [line for line in f if line.strip() and line.split("\t", 1)[0].strip() in wanted]
    atomic_write_text(dst, "".join(lines))


def check_run(path: str, qids) -> int:
    """Every query id of ``qids`` has lines in the run ``path``; returns the number of lines."""
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        raise StepError(f"{path}: the search wrote no run")
    found, lines = set(), 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                found.add(line.split(None, 1)[0])
                lines += 1
    missing = [q for q in qids if q not in found]
    if missing:
        raise StepError(f"{path}: {len(missing)} queries have no results, e.g. {missing[:3]}")
    return lines


def _select(plan: dict, only) -> list[dict]:
    if not only:
        return plan["searches"]
    unknown = sorted(set(only) - {s["name"] for s in plan["searches"]})
    if unknown:
        raise StepError(f"--only names searches the plan does not have: {', '.join(unknown)}")
    return [s for s in plan["searches"] if s["name"] in only]


def _relative_to(cwd: str | None):
    """Paths relative to the runner's folder: Pyserini picks encoder classes from substrings of its path
    arguments ("bpr" in --encoded-queries selects the BPR encoder), so keep user folder names out of them."""
    if not cwd:
        return lambda path: path
    return lambda path: os.path.relpath(path, cwd)


def search(plan: dict, index_root: str, queries_root: str, runs_dir: str, runner: CliRunner,
           threads: int = 1, batch_size: int = SEARCH_BATCH, only=None,
           first_pass_hits: int = FIRST_PASS_HITS) -> list[dict]:
    """Run ``python -m pyserini.search.faiss`` for every search of the plan (pre-encoded queries); compacted
    searches in two passes (module docstring), ``first_pass_hits`` 0 for one pass over the whole pool."""
    if 0 < first_pass_hits < MIN_DEPTH:
        raise StepError(f"--first_pass_hits must be 0 (one pass) or at least {MIN_DEPTH}, got {first_pass_hits}")
    os.makedirs(runs_dir, exist_ok=True)
    root = plan["root"]
    searches = _select(plan, only)
    rel = _relative_to(runner.cwd)
    done, compaction = [], {}
    t0 = time.time()
    for i, s in enumerate(searches, 1):
        index = os.path.join(index_root, s["index"])
        queries = os.path.join(queries_root, s["queries"])
        topics = os.path.join(root, s["topics"])
        for path, what in ((index, "index"), (queries, "encoded queries"), (topics, "topics")):
            if not os.path.exists(path):
                raise StepError(f"search {s['name']}: {what} not found: {path}")
        run = os.path.join(runs_dir, s.get("run", s["name"] + ".trec"))
        pool_hits = int(s["hits"])

        def pyserini_search(topics_file: str, hits: int, output: str) -> None:
            runner.run("pyserini.search.faiss", [
                "--index", rel(index), "--topics", rel(topics_file), "--encoded-queries", rel(queries),
                "--output", rel(output), "--hits", hits, "--batch-size", batch_size, "--threads", threads])

        start = time.time()
        if not s.get("compact"):
            raw = run + ".tmp"
            try:
                pyserini_search(topics, pool_hits, raw)
                lines = check_run(raw, read_qids(topics))
                os.replace(raw, run)
            finally:
                if os.path.exists(raw):
                    os.remove(raw)
            detail = f"{lines} hits"
        else:
            relevant = _read_qrels_relevant(os.path.join(root, s["qrels"]))
            first = min(first_pass_hits, pool_hits) if first_pass_hits else pool_hits
            passes = [run + ".pass1.tmp", run + ".pass2.tmp"]
            try:
                with atomic_path(run) as tmp, open(tmp, "w", encoding="utf-8") as out:
                    pyserini_search(topics, first, passes[0])
                    stats = compact_run(passes[0], out, relevant, hits=first if first < pool_hits else None)
                    deep = stats.pop("open")
                    if deep:
                        deep_topics = os.path.join(runs_dir, "deep", s["name"] + ".tsv")  # kept: commands.sh
                        write_topics_subset(topics, deep, deep_topics)
                        pyserini_search(deep_topics, pool_hits, passes[1])
                        second = compact_run(passes[1], out, {q: relevant.get(q, set()) for q in deep})
                        for key in ("queries", "lines_in", "lines_out"):
                            stats[key] += second[key]
            finally:
                for tmp in passes:
                    if os.path.exists(tmp):
                        os.remove(tmp)
            detail = (f"{stats['queries']} queries ({len(deep)} over the whole pool), {stats['lines_in']} hits -> "
                      f"{stats['lines_out']} kept")
            compaction[s["name"]] = {"hits": pool_hits, "first_pass_hits": first, "deep_queries": len(deep),
                                     "min_depth": MIN_DEPTH, **stats}
        log(f"search [{i}/{len(searches)}] {s['name']}: {detail} ({time.time() - start:.1f}s, "
            f"{time.time() - t0:.0f}s so far)")
        done.append({"name": s["name"], "run": run})
    if compaction:
        path = os.path.join(runs_dir, COMPACTION_FILE)
        old = {}
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                old = json.load(f).get("runs", {})
        atomic_write_json(path, {
            "note": "rankings cut after each query's last relevant passage (ties on the written score kept, at least "
                    "min_depth lines); first pass first_pass_hits deep, deep_queries searched again over the whole "
                    "pool (hits): every relevant passage keeps its full-ranking rank, so mAP, R@k, nDCG@10 and the "
                    "rank distance are those of the full ranking",
            "runs": {**old, **compaction}})
    return done


def _expected_measures(args: list[str]) -> list[str]:
    """trec_eval's output names of the ``-m`` measures in ``args`` (``recall.1,10`` -> recall_1, recall_10)."""
    names = []
    for i, a in enumerate(args):
        if a == "-m" and i + 1 < len(args):
            family, _, cutoffs = args[i + 1].partition(".")
            names += [f"{family}_{c}" for c in cutoffs.split(",")] if cutoffs else [family]
    return names


def trec_eval(plan: dict, runs_dir: str, output_dir: str, runner: CliRunner, only=None) -> dict:
    """``python -m pyserini.eval.trec_eval ARGS QRELS RUN`` per search and argument set -> ``{name}.txt``."""
    from hybrid_tevatron.eval.metrics import parse_trec_eval

    os.makedirs(output_dir, exist_ok=True)
    root = plan["root"]
    searches = _select(plan, only)
    summary = {}
    for i, s in enumerate(searches, 1):
        run = os.path.join(runs_dir, s.get("run", s["name"] + ".trec"))
        if not os.path.isfile(run):
            raise StepError(f"trec_eval {s['name']}: run not found: {run}")
        qrels = os.path.join(root, s["qrels"])
        texts, values = [], {}
        for args in plan["trec_eval_args"]:
            rel = _relative_to(runner.cwd)
            out = runner.run("pyserini.eval.trec_eval", [*args, rel(qrels), rel(run)], capture=True)
            parsed = parse_trec_eval(out)
            wanted = _expected_measures(args)
            lacking = [m for m in wanted if m not in parsed.get("all", {})]
            if lacking:
                raise StepError(f"trec_eval on {run} printed no {', '.join(lacking)}; output:\n{out[-2000:]}")
            values.update({m: parsed["all"][m] for m in wanted})
            texts.append(out.rstrip("\n") + "\n")
        atomic_write_text(os.path.join(output_dir, s["name"] + ".txt"), "".join(texts))
        summary[s["name"]] = values
        log(f"trec_eval [{i}/{len(searches)}] {s['name']}: "
            + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))
    atomic_write_json(os.path.join(output_dir, "summary.json"), summary)
    return summary


def crosscheck(manifest_path: str, runs_dir: str, trec_eval_dir: str, tol: float = 1e-4) -> dict:
    """Our in-process metrics (``eval.metrics``) vs the saved trec_eval ``-q`` output, per query and overall."""
    from hybrid_tevatron.eval.lareqa import load_manifest
    from hybrid_tevatron.eval.metrics import compare_with_trec_eval, evaluate_run, parse_trec_eval, read_qrels

    manifest = load_manifest(manifest_path)
    out = {"tolerance": tol, "searches": {}, "problems": []}
    worst = 0.0
    for s in manifest["searches"]:
        run = os.path.join(runs_dir, s["run"])
        te_path = os.path.join(trec_eval_dir, s["name"] + ".txt")
        if not os.path.isfile(te_path):
            raise StepError(f"crosscheck: trec_eval output not found: {te_path}")
        with open(te_path, encoding="utf-8") as f:
            theirs = parse_trec_eval(f.read())
        ours = evaluate_run(run, read_qrels(os.path.join(manifest["root"], s["qrels"])),
                            pool_size=s["pool_size"])["per_query"]
        problems = compare_with_trec_eval(ours, theirs)
        diff = max((abs(v - theirs[q][k]) for q, vals in ours.items() for k, v in vals.items()
                    if q in theirs and k in theirs[q]), default=0.0)
        worst = max(worst, diff)
        out["searches"][s["name"]] = {"queries": len(ours), "max_abs_diff": diff, "agrees": not problems}
        out["problems"] += [f"{s['name']}: {p}" for p in problems[:5]]
    out["max_abs_diff"] = worst
    out["agrees"] = not out["problems"]
    return out


# ----------------------------------------------------------------------------------------------- CLI


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hybrid_tevatron.eval.pipeline", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    e = sub.add_parser("encoding", help="resolve and check the model's encoding settings")
    e.add_argument("--model", required=True)
    e.add_argument("--encoder", default="pyserini", choices=["ours", "pyserini"])
    e.add_argument("--pooling", choices=["cls", "mean"])
    e.add_argument("--normalize", dest="normalize", action="store_const", const=True)
    e.add_argument("--no-normalize", "--no_normalize", dest="normalize", action="store_const", const=False)
    e.add_argument("--query_prefix")
    e.add_argument("--passage_prefix")
    e.add_argument("--query_max_len", type=int)
    e.add_argument("--passage_max_len", type=int)
    e.add_argument("--output", help="write encoding.json here")

    pl = sub.add_parser("plan-lareqa", help="search plan for a LAReQA manifest")
    pl.add_argument("--manifest", required=True)
    pl.add_argument("--output", help="default: plan.json beside the manifest")

    ls = sub.add_parser("list", help="print a plan's corpora / query sets / merged indexes as TSV "
                        "(paths relative to the plan's folder)")
    ls.add_argument("--plan", required=True)
    ls.add_argument("what", choices=["corpora", "queries", "merged"])

    for name in ("search", "trec-eval"):
        sp = sub.add_parser(name)
        sp.add_argument("--plan", required=True)
        sp.add_argument("--runs_dir", required=True)
        sp.add_argument("--cli", default=os.environ.get("PYSERINI_CLI", "inprocess"),
                        choices=["inprocess", "subprocess"])
        sp.add_argument("--commands", help="append each command, shell-quoted, to this file")
        sp.add_argument("--only", nargs="+", help="only these searches")
        sp.add_argument("--cwd", help="run the Pyserini commands in this folder, with paths relative to it")
        if name == "search":
            sp.add_argument("--index_root", required=True)
            sp.add_argument("--queries_root", required=True)
            sp.add_argument("--threads", type=int, default=1)
            sp.add_argument("--batch_size", type=int, default=SEARCH_BATCH)
            sp.add_argument("--first_pass_hits", type=int, default=FIRST_PASS_HITS,
                            help=f"compacted searches: hits of the first pass, the rest over the whole pool only "
                                 f"for queries it leaves open (0: one pass over the whole pool; default "
                                 f"{FIRST_PASS_HITS})")
        else:
            sp.add_argument("--output_dir", required=True)

    r = sub.add_parser("run", help="run the 'python -m MODULE ...' lines of a jobs file (in process by default)")
    r.add_argument("jobs")
    r.add_argument("--label", default="job")
    r.add_argument("--cli", default=os.environ.get("PYSERINI_CLI", "inprocess"), choices=["inprocess", "subprocess"])
    r.add_argument("--commands", help="append each command, shell-quoted, to this file")
    r.add_argument("--cwd", help="run the commands in this folder")

    c = sub.add_parser("crosscheck", help="in-process metrics vs saved trec_eval -q output")
    c.add_argument("--manifest", required=True)
    c.add_argument("--runs_dir", required=True)
    c.add_argument("--trec_eval_dir", required=True)
    c.add_argument("--output", required=True)
    c.add_argument("--tolerance", type=float, default=1e-4)

    args = p.parse_args(argv)
    try:
        if args.cmd == "encoding":
            overrides = {k: getattr(args, k) for k in ENCODING_KEYS}
            enc = resolve_encoding(args.model, overrides, args.encoder)
            if args.output:
                atomic_write_json(args.output, enc)
            sys.stdout.write(_shell_lines({k: v for k, v in enc.items() if k != "source"}))
        elif args.cmd == "plan-lareqa":
            plan = plan_from_lareqa(args.manifest)
            root = args.manifest if os.path.isdir(args.manifest) else os.path.dirname(args.manifest)
            path = write_plan(plan, args.output or os.path.join(root, "plan.json"))
            print(path)
        elif args.cmd == "list":
            plan = load_plan(args.plan)
            if args.what == "corpora":
                for key, c_ in plan["corpora"].items():
                    print(f"{key}\t{c_['path']}\t{c_['size']}")
            elif args.what == "queries":
                for key, path in plan["queries"].items():
                    print(f"{key}\t{path}")
            else:
                for key, parts in plan.get("merged", {}).items():
                    print(f"{key}\t{' '.join(parts)}")
        elif args.cmd in ("search", "trec-eval"):
            plan = load_plan(args.plan)
            runner = CliRunner(args.cli, os.path.abspath(args.commands) if args.commands else None,
                               os.path.abspath(args.cwd) if args.cwd else None)
            if args.cmd == "search":
                search(plan, os.path.abspath(args.index_root), os.path.abspath(args.queries_root),
                       os.path.abspath(args.runs_dir), runner, args.threads, args.batch_size, args.only,
                       args.first_pass_hits)
            else:
                trec_eval(plan, os.path.abspath(args.runs_dir), os.path.abspath(args.output_dir), runner,
                          args.only)
        elif args.cmd == "run":
            runner = CliRunner(args.cli, os.path.abspath(args.commands) if args.commands else None,
                               os.path.abspath(args.cwd) if args.cwd else None)
            run_jobs(args.jobs, runner, args.label)
        elif args.cmd == "crosscheck":
            res = crosscheck(args.manifest, args.runs_dir, args.trec_eval_dir, args.tolerance)
            atomic_write_json(args.output, res)
            n = len(res["searches"])
            if not res["agrees"]:
                print(f"error: in-process metrics disagree with trec_eval on {args.runs_dir}:\n  "
                      + "\n  ".join(res["problems"][:20]), file=sys.stderr)
                return 1
            log(f"crosscheck: {n} runs, in-process metrics = trec_eval (max |diff| {res['max_abs_diff']:.2e})")
    except StepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        from hybrid_tevatron.eval.lareqa import LareqaError
        from hybrid_tevatron.eval.metrics import EvalError

        if isinstance(err, (LareqaError, EvalError)):
            print(f"error: {err}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
