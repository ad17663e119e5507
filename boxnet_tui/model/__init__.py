"""BoxNet: the network, inference on micrographs, and the store of trained models."""
