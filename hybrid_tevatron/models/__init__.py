"""Model folders the recipes can use with no model hub: the embedded multilingual-e5-small (:mod:`.me5_small`) and
the default-model choice (:mod:`.default`)."""
