"""Reading images and videos, and finding them on disk."""
