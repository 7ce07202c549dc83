"""nnU-Net-equivalent inference: preprocessing, the Gaussian sliding window, the predictor, class
probabilities on disk, and the model card's postprocessing (decision rule, component floor)."""
