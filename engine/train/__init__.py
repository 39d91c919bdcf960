"""Training: models, losses, augmentation, data, the loop."""
