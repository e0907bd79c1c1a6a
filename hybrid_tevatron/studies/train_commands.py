"""The training commands of the recipes and studies, kept as data: each flag list is written once, here.

* :data:`BUDGET`: the small budget every study and the quick start train with (:meth:`~hybrid_tevatron.studies.
  budget.Budget.train_argv`; its settings are :class:`~hybrid_tevatron.studies.budget.Budget`'s).
* :data:`PAPER`: ``recipes/train_paper.sh``, the paper's settings on mMARCO (:func:`paper_command` adds what depends
  on the GPUs, the model and the environment, and launches it with torchrun over several processes).
* :data:`IMAGE_TEXT`: ``recipes/image_text.sh``'s text tower + head over a frozen image tower
  (:func:`image_text_command`).

A flag list is a template: whitespace separates the words; ``{name}`` in a word is replaced by the value ``name``,
and a word ``{name...}`` by the words of the list ``name`` (none when it is empty). The recipes' settings are
environment variables: the value ``x`` is the variable ``X`` when it is set and not empty, else its default in the
command's table. ``python -m hybrid_tevatron.studies.budget paper|image_text`` prints a recipe's command.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from hybrid_tevatron.errors import HybridTevatronError

PREFIXES = ("query: ", "passage: ")  # multilingual-e5's

BUDGET = """
    --model_name_or_path {model} --pooling mean --normalize --temperature {temperature}
    --query_prefix {query_prefix} --passage_prefix {passage_prefix} --train_files {train_files...} {sources...}
    --languages {languages...} --regime {regime} --alpha {alpha} --train_group_size {group_size}
    --query_max_len {query_max_len} --passage_max_len {passage_max_len} --output_dir {output_dir} --overwrite_output_dir
    --per_device_train_batch_size {batch} --max_steps {steps} --optim adamw_torch --weight_decay 0.01
    --learning_rate {lr} --warmup_ratio {warmup_ratio} --seed {seed} --dataloader_drop_last --save_strategy no
    --logging_steps 10 --report_to none
"""

PAPER = """
    --model_name_or_path {model} --pooling {pooling} --normalize --temperature {temperature}
    --train_files {train_files...} --languages {languages...} --regime {regime} --alpha {alpha}
    --train_group_size {group_size} --query_max_len {query_max_len} --passage_max_len {passage_max_len}
    --output_dir {output_dir} --per_device_train_batch_size {per_device} --gradient_accumulation_steps 1
    --optim adamw_torch --learning_rate {lr} --weight_decay {weight_decay} --warmup_ratio {warmup_ratio}
    --num_train_epochs {epochs} --max_steps {max_steps} --seed {seed} --dataloader_drop_last
    --logging_steps 50 --save_steps 2000 --save_total_limit 2 --report_to none
"""
# the paper's settings and those it leaves open (⚑ in recipes/train_paper.sh); POOLING: cls for LaBSE, else mean
PAPER_SETTINGS = {"model": "FacebookAI/xlm-roberta-base", "langs": "ar de en es hi ru zh", "regime": "hybrid",
                  "alpha": "0.5", "batch": "100", "lr": "3e-5", "weight_decay": "0.01", "epochs": "1",
                  "max_steps": "-1", "warmup_ratio": "0.1", "group_size": "2", "query_max_len": "64",
                  "passage_max_len": "256", "temperature": "0.05", "seed": "42", "pooling": ""}

IMAGE_TEXT = """
    --image_data {out}/data/flickr --image_index {out}/index/flickr --image_tower {tower}
    --model_name_or_path {model} --pooling mean --temperature {temperature} --query_prefix {query_prefix}
    --regime {regime} --alpha {alpha} --train_group_size 1 --per_device_train_batch_size {batch}
    --learning_rate {lr} --warmup_ratio 0.05 --max_steps {steps} --save_strategy no --logging_steps 50
    --report_to none --output_dir {out}/model --overwrite_output_dir
"""
IMAGE_TEXT_SETTINGS = {"model": "intfloat/multilingual-e5-small", "regime": "hybrid", "alpha": "0.5", "batch": "128",
                       "lr": "5e-5", "steps": "2000", "temperature": "0.05", "tower": ""}


class CommandError(HybridTevatronError):
    """A recipe's command cannot be built as configured (missing data, a batch the processes cannot share...)."""


def expand(template: str, values: Mapping[str, object]) -> list[str]:
    """The words of ``template`` with ``values`` filled in (module docstring)."""
    argv: list[str] = []
    for word in template.split():
        if word.startswith("{") and word.endswith("...}"):
            argv.extend(str(v) for v in values[word[1:-4]])
        else:
            argv.append(word.format(**values))
    return argv


def settings(defaults: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """Each setting ``x``: the environment variable ``X`` when set and not empty, else its default."""
    return {k: env.get(k.upper()) or v for k, v in defaults.items()}


def image_text_command(out: str, env: Mapping[str, str]) -> list[str]:
    """``recipes/image_text.sh``'s training: ``hybrid_tevatron.images.train`` and its flags (TOWER is required)."""
    values = settings(IMAGE_TEXT_SETTINGS, env)
    if not values["tower"]:
        raise CommandError("TOWER is not set (recipes/image_text.sh sets it)")
    return ["hybrid_tevatron.images.train", *expand(IMAGE_TEXT, dict(values, out=out, query_prefix=PREFIXES[0]))]


def _number(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise CommandError(f"{name} must be a whole number, got {value!r}") from None


def paper_command(train_dir: str, output_dir: str, env: Mapping[str, str], cuda_count: int, bf16=None) -> list[str]:
    """``recipes/train_paper.sh``'s command after ``python -m``: the driver, or torchrun over NNODES × NGPUS
    processes (NGPUS: every visible GPU by default), each with ``BATCH / (NNODES × NGPUS)`` examples. ``bf16()``
    says whether the GPUs support bf16 (the default precision on GPUs; else fp16; fp32 on the CPU). Says on stderr
    what it trains."""
    values = settings(PAPER_SETTINGS, env)
    languages = values["langs"].split()
    for lang in languages:
        path = f"{train_dir}/{lang}.jsonl"
        if not (os.path.exists(path) and os.path.getsize(path)):
            raise CommandError(f"{path} missing (run recipes/prepare_mmarco.sh)")
    ngpus_given, nnodes_given = env.get("NGPUS") or str(cuda_count), env.get("NNODES") or "1"
    ngpus, nnodes = _number("NGPUS", ngpus_given), _number("NNODES", nnodes_given)
    world = nnodes * (ngpus if ngpus > 0 else 1)
    batch = _number("BATCH", values["batch"])
    if batch % world:
        raise CommandError(f"BATCH={values['batch']} is not divisible by NNODES x NGPUS = {world}")
    if ngpus > 0:
        precision = env.get("PRECISION") or ("bf16" if bf16() else "fp16")
    else:
        precision = env.get("PRECISION") or "fp32"
        print("warning: no GPU found; training on CPU (full-scale mMARCO training is not practical there)",
              file=sys.stderr)
    model = values["model"]
    pooling = values["pooling"] or ("cls" if "LaBSE" in model or "labse" in model else "mean")
    argv = expand(PAPER, dict(values, pooling=pooling, languages=languages, per_device=batch // world,
                              train_files=[f"{lang}={train_dir}/{lang}.jsonl" for lang in languages],
                              output_dir=output_dir))
    argv += ["--resume_from_checkpoint", env["RESUME"]] if env.get("RESUME") else []
    argv += [] if cuda_count > 0 else ["--use_cpu"]
    argv += {"bf16": ["--bf16"], "fp16": ["--fp16"]}.get(precision, [])
    argv += ["--query_prefix", PREFIXES[0], "--passage_prefix", PREFIXES[1]] if "e5" in model else []
    argv += (env.get("EXTRA") or "").split()
    print(f"training {model} ({values['regime']}, alpha {values['alpha']}) on {values['langs']}: {nnodes_given} "
          f"node(s) x {ngpus_given} GPU(s), {batch // world} per process, batch {values['batch']}", file=sys.stderr)
    if world == 1:
        return ["hybrid_tevatron.driver.train", *argv]
    argv.append("--negatives_x_device")  # one contrastive problem over all processes: the batch of BATCH examples
    argv += [] if cuda_count > 0 else ["--ddp_backend", "gloo"]
    launch = ["--standalone"]
    if nnodes > 1:
        if not env.get("RDZV_ENDPOINT"):
            raise CommandError("RDZV_ENDPOINT: NNODES > 1 needs RDZV_ENDPOINT=HOST:PORT of the first node")
        launch = ["--nnodes", nnodes_given, "--rdzv_backend", "c10d", "--rdzv_id", env.get("RDZV_ID") or "hybrid",
                  "--rdzv_endpoint", env["RDZV_ENDPOINT"]]
    return ["torch.distributed.run", *launch, "--nproc_per_node", str(ngpus if ngpus > 0 else 1),
            "-m", "hybrid_tevatron.driver.train", *argv]
