"""swapdeck compare: several models trained, converted and scored side by side."""
