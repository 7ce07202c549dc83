"""PASTA networks and the files that hold them: architecture from the weights (:mod:`.network`),
checkpoint and model-folder loading (:mod:`.checkpoints`), the model card (:mod:`.card`, torch-free)
and the bundled default model (:mod:`.bundled_models`)."""
