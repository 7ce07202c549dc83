"""PASTA encoder features and the heads on them: learned attribute heads of a model folder
(:mod:`.attribute_heads`), feature extraction (:mod:`.features`, :mod:`.feature_table`), fitting
staging/binary/survival heads (:mod:`.fitting`), head files applied with numpy only
(:mod:`.head_file`) and their use in ``pasta analyze`` (:mod:`.apply`)."""
