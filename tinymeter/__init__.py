"""tinymeter: how fast, how big and how power-hungry a neural network is on a Cortex-M."""

__version__ = "0.1.0"
