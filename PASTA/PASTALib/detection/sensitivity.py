"""The detector's operating points, by name: the one list the CLI, the Slicer panel and the model
card share (plain Python, so the Slicer module can read it at file scope)."""

#: ``--sensitivity`` choices, from fewest to most findings.
SENSITIVITIES = ("strict", "balanced", "high")
#: the default: at most one false finding per healthy scan the operating points were chosen on, on average
DEFAULT_SENSITIVITY = "balanced"
