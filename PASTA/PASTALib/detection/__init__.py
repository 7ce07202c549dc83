"""The organ-aware lesion detector: candidates by contrast to their own organ, scored by a learned model."""
