"""Colored MNIST: MNIST sources, colorization, on-disk cache, tensors on the device."""
