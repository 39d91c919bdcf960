"""Detection, landmarks, alignment, masks, pose, quality and identity."""
