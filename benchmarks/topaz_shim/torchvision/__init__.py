"""Stand-in for torchvision, only so that Topaz's modules import beside a CPU-only torch.

Topaz's extraction never calls these; its training-time augmentation does.
"""
