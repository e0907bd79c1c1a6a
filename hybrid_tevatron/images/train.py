"""Train a multilingual text tower against frozen image embeddings: ``python -m hybrid_tevatron.images.train``.

    python -m hybrid_tevatron.images.train --image_data data/flickr-train --image_index indexes/flickr-train \\
        --model_name_or_path intfloat/multilingual-e5-small --pooling mean --temperature 0.05 \\
        --query_prefix "query: " --regime hybrid --alpha 0.5 --train_group_size 1 \\
        --per_device_train_batch_size 64 --learning_rate 2e-5 --max_steps 1000 --output_dir runs/image-text

Every flag of ``python -m hybrid_tevatron.driver.train`` (backend, model, data, training flags) plus
:class:`ImageArguments`. The image source (``--image_data``: a folder of :mod:`hybrid_tevatron.images.data`;
``--image_index``: its images encoded by :mod:`hybrid_tevatron.images.encode`) joins the text sources of
``--train_files``/``--extra_sources``/``--dataset_name`` (none is needed), under the same ``--source_weights``,
``--alpha_schedule`` and ``--regime`` (for the image source: mono, or mixed where text would be cross; see
:mod:`hybrid_tevatron.images.source`). The checkpoint is the text encoder's plain HF folder plus the head
(``image_head.safetensors``) and ``hybrid_tevatron.json`` with an ``image_tower`` entry: the tower (absolute path or
Hub id, digests of its config and weights) that the evaluation checks its images' tower against. ``--image_tower``
must be the tower of the index's ``tower.json`` and of the index's size (:func:`checked_tower`;
``--allow_other_tower`` takes another of the same size, recorded). Failures: one ``error:``
line, exit status 2, as the text driver. A single ``.json`` argument holds the same flags as keys, as for the
text driver.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass, field, fields

from transformers import HfArgumentParser

from hybrid_tevatron.data.caption_training import DEFAULT_NEGATIVES
from hybrid_tevatron.errors import HybridTevatronError, first_line, report_errors
from hybrid_tevatron.images.source import DEFAULT_SOURCE_NAME
from hybrid_tevatron.logs import get_logger

log = get_logger(__name__)


@dataclass
class ImageArguments:
    image_data: str = field(metadata={"help": "Image data set folder (python -m hybrid_tevatron.images.data)."})
    image_index: str = field(metadata={"help": "Faiss index of its images (python -m hybrid_tevatron.images.encode)."})
    image_tower: str | None = field(default=None, metadata={
        "help": "The tower that encoded --image_index (recorded in hybrid_tevatron.json; default: the index's "
                "tower.json, which a sharded-then-merged index lacks). Checked against tower.json (config and "
                "weights digests) and the index's embedding size."})
    allow_other_tower: bool = field(default=False, metadata={
        "help": "Accept an --image_tower that is not the tower of the index's tower.json (same embedding size "
                "only); recorded in hybrid_tevatron.json as image_tower.tower_check."})
    image_source_name: str = field(default=DEFAULT_SOURCE_NAME, metadata={
        "help": "The image source's name in --source_weights and the logs."})
    image_negatives: int = field(default=DEFAULT_NEGATIVES, metadata={
        "help": "Negatives per caption (other images, deterministic per --seed); used when --train_group_size > 1."})


def has_text_sources(data_args) -> bool:
    return bool(data_args.train_files or data_args.extra_sources or data_args.dataset_name)


def build_image_trainer(backend, model_args, data_args, training_args, callbacks: list | None = None, *,
                        image_args: ImageArguments):
    """Text sources + the image source -> :class:`~hybrid_tevatron.images.source.ImageBatchPlan` -> the backend's
    model wrapped with the head -> the backend's trainer with the head's save/restore."""
    from hybrid_tevatron.data.errors import DataError
    from hybrid_tevatron.data.readers import load_sources
    from hybrid_tevatron.eval.pipeline.ranks import read_index
    from hybrid_tevatron.eval.runner import StepError
    from hybrid_tevatron.images.data import read_image_data
    from hybrid_tevatron.images.model import (
        ImageCheckpointMetadata,
        ImageTextModel,
        ProjectionHead,
        image_trainer_class,
    )
    from hybrid_tevatron.images.source import ImageBatchPlan, ImageTrainCollator, ImageTrainDataset, image_source
    from hybrid_tevatron.modeling import CheckpointMetadata
    from hybrid_tevatron.run_folder import SetupError
    from hybrid_tevatron.training import build_plan, collator_options, load_tokenizer

    tokenizer = load_tokenizer(model_args)
    text = load_sources(data_args) if has_text_sources(data_args) else []
    try:
        index = read_index(image_args.image_index)
    except StepError as err:
        raise DataError(f"--image_index: {err}") from None
    tower = checked_tower(image_args, int(index.matrix.shape[1]))
    images = image_source(read_image_data(image_args.image_data), index, image_args.image_source_name,
                          image_args.image_negatives, training_args.seed, data_args.languages or None)
    if images.name in [s.name for s in text]:
        raise SetupError(f"--image_source_name {images.name!r} is also a text source's name")
    sources = text + [images]
    plan = build_plan(ImageBatchPlan, sources, data_args, training_args)
    text_model = backend.build_model(model_args, data_args, training_args)
    head = ProjectionHead(text_model.encoder.config.hidden_size, images.dimension)
    share = backend.name == "main" or bool(getattr(training_args, "negatives_x_device", False))
    model = ImageTextModel(text_model, head, model_args.pooling, model_args.temperature, share)
    metadata = CheckpointMetadata.from_args(model_args, data_args, backend=backend.name)
    metadata = ImageCheckpointMetadata(**metadata.__dict__, image_tower={
        **tower, "index": os.path.abspath(image_args.image_index),
        "data": os.path.abspath(image_args.image_data), "source": images.name, "dimension": images.dimension,
        "head": "image_head.safetensors", "head_in": head.in_features, "head_out": head.out_features,
        "loss": "bidirectional InfoNCE (text->image + image->text) / 2"})
    return image_trainer_class(backend.trainer_class)(
        model=model,
        args=training_args,
        train_dataset=ImageTrainDataset(sources, data_args.query_prefix, data_args.passage_prefix),
        data_collator=ImageTrainCollator(tokenizer, **collator_options(data_args),
                                         embeddings={images.name: images.embeddings}),
        processing_class=tokenizer,
        callbacks=callbacks,
        plan=plan,
        metadata=metadata,
    )


def checked_tower(image_args: ImageArguments, dimension: int) -> dict:
    """The tower keys of the checkpoint's ``image_tower`` entry: ``tower`` (absolute path or Hub id) and
    ``tower_digest``, from ``--image_tower`` checked against the index (its ``tower.json`` and its ``dimension``), else
    from the index's ``tower.json``; plus ``tower_check`` where the index did not confirm the tower (``unchecked``:
    no ``tower.json``; ``other tower allowed``: ``--allow_other_tower``). A tower of another size, or another tower
    than ``tower.json``'s without ``--allow_other_tower``, is a :class:`~hybrid_tevatron.run_folder.SetupError`."""
    from hybrid_tevatron.images.encode import TOWER_RECORD, read_tower_record
    from hybrid_tevatron.images.tower import ImageTower, describe_tower, tower_differences, tower_record
    from hybrid_tevatron.run_folder import SetupError

    index = image_args.image_index
    indexed = read_tower_record(index)
    if indexed is not None:
        indexed = {k: indexed.get(k) for k in ("tower", "tower_digest", "dimension")}
    if image_args.image_tower is None:
        if indexed is None:
            reason = f"{index} has no {TOWER_RECORD} and no --image_tower was given"
            log.warning("the checkpoint records no image tower (%s), so no evaluation can check it", reason)
            return {"tower": None, "tower_check": {"status": "unchecked", "reason": reason}}
        return {"tower": indexed["tower"], "tower_digest": indexed["tower_digest"]}
    given = tower_record(image_args.image_tower)
    if indexed is not None and not tower_differences(indexed, given):
        return given
    size = ImageTower(image_args.image_tower, device="cpu").dimension  # an image tower at all, and of which size
    where = f" (its {TOWER_RECORD}: {describe_tower(indexed)})" if indexed is not None else ""
    if size != dimension:
        raise SetupError(f"--image_tower {describe_tower({**given, 'dimension': size})} embeds in {size} dimensions "
                         f"but --image_index {index} holds {dimension}-dimension vectors{where}; give the tower "
                         "that encoded the index")
    if indexed is None:
        reason = f"{index} has no {TOWER_RECORD}: only the embedding size ({size}) was checked"
        log.warning("--image_tower %s: %s", given["tower"], reason)
        return {**given, "tower_check": {"status": "unchecked", "reason": reason}}
    differences = tower_differences(indexed, {**given, "dimension": size})
    if not image_args.allow_other_tower:
        raise SetupError(f"--image_index {index} was encoded with tower {describe_tower(indexed)} but --image_tower "
                         f"is {describe_tower({**given, 'dimension': size})}: they differ in "
                         f"{', '.join(differences)}; drop --image_tower ({TOWER_RECORD} names the index's tower), "
                         "encode the images with it, or give --allow_other_tower (recorded in hybrid_tevatron.json)")
    log.warning("--allow_other_tower: recording --image_tower %s, not the index's tower %s (they differ in %s)",
                given["tower"], indexed["tower"], ", ".join(differences))
    return {**given, "tower_check": {"status": "other tower allowed", "differences": differences,
                                     "index_tower": indexed}}


def parse_image_args(argv: list[str]):
    """``argv`` (flags, or one ``.json`` config) -> ``(image_args, backend, model_args, data_args, training_args)``."""
    from hybrid_tevatron.driver.train import is_config, parse_args, parse_config, read_config

    if is_config(argv):
        config = read_config(argv[0])
        mine = {f.name for f in fields(ImageArguments)}
        (image_args,) = HfArgumentParser(ImageArguments).parse_dict({k: config.pop(k) for k in list(config)
                                                                      if k in mine})
        return (image_args, *parse_config(config))
    image_args, rest = HfArgumentParser(ImageArguments).parse_args_into_dataclasses(argv, return_remaining_strings=True)
    return (image_args, *parse_args(rest))


@report_errors
def main(argv: list[str] | None = None) -> None:
    from hybrid_tevatron.driver.train import run

    argv = sys.argv[1:] if argv is None else argv
    try:
        image_args, backend, model_args, data_args, training_args = parse_image_args(list(argv))
    except HybridTevatronError:
        raise
    except (ValueError, OSError) as err:  # HfArgumentParser's own checks, an unreadable config: their first line
        raise HybridTevatronError(first_line(err)) from None
    run(backend, model_args, data_args, training_args, build=functools.partial(build_image_trainer,
                                                                               image_args=image_args))


if __name__ == "__main__":
    main()
