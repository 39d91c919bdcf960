"""swapdeck's full-screen Textual wizard over the headless engine.

Nothing here imports torch at start-up: engine work runs in workers that
import the engine lazily, so the first screen appears at once.
"""
