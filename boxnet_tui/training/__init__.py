"""Retraining BoxNet: labels, examples, augmentation and the training loop."""
