"""PASTATrainLib: ``pasta train``, fine-tune or train PASTA-family networks, with online lesion synthesis.

The layer above the core (PASTALib) and synthesis (PASTASynthLib); installed with the pip extra
``[train]`` (which brings MONAI) and not shipped in the Slicer extension. One job per module:
:mod:`.config` (settings and presets), :mod:`.cases` (where training cases come from: labelled pairs,
PASTA-Gen folders, or lesions synthesised on the fly), :mod:`.patches` (lesion-oversampling patch
sampler and MONAI augmentation), :mod:`.loss` (Dice + cross-entropy with deep supervision),
:mod:`.evaluate` (sliding-window Dice per class), :mod:`.trainer` (the loop, resumable checkpoints, the
model folder), :mod:`.card_page` (the readable MODEL_CARD.md) and :mod:`.cli_train` (the command).
"""
