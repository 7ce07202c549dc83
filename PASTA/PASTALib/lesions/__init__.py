"""What a lesion is, defined once: the lesion-type table (:mod:`.lesion_types`), the report's
attribute vocabulary (:mod:`.vocabulary`), organ groups and TotalSegmentator classes
(:mod:`.anatomy`), coded concepts (:mod:`.codes`) and lesion components (:mod:`.components`).

Every other layer (report, synthesis, heads, the Slicer modules, the tests) reads these tables."""
