"""Data and preprocessing: evaluation transforms of each weight set, ImageNet class names and wnids."""
