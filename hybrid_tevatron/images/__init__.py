"""Image–text retrieval with a frozen image tower (locked-image tuning) beside the caption proxy.

The image tower (a ``CLIPModel``/``SiglipModel`` or a vision-tower checkpoint, with its image processor) is frozen:
its embeddings of the image corpus are computed once and indexed (:mod:`.encode`, a Pyserini Faiss index). A
multilingual text encoder plus a trained linear head (text size -> image size) learns to put every caption, in any
language, next to its image (:mod:`.train`), with the batch plan's mono / mixed / hybrid steps over the captions
(:mod:`.source`). One module per concern:

* :mod:`.data`     images folder + caption files (Multi30K + Flickr30k image splits, XTD10 + MSCOCO) -> an image
                   data set folder (Tevatron's multimodal corpus rows ``docid``/``image``, parallel caption files);
* :mod:`.tower`    the frozen image tower: load, preprocess, embed;
* :mod:`.encode`   ``python -m hybrid_tevatron.images.encode``: image corpus -> Faiss index (sharded like text);
* :mod:`.source`   the image source of the batch plan (images are the passages) and the plan's image rules;
* :mod:`.model`    the projection head, the bidirectional contrastive loss, the trainer's image additions;
* :mod:`.train`    ``python -m hybrid_tevatron.images.train``;
* :mod:`.evaluate` ``python -m hybrid_tevatron.eval images``: text->image and image->text, exact whole-pool ranks.
"""
