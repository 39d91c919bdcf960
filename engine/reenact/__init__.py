"""Reenactment: a still portrait moved the way the person in a driving video moves (FOMM)."""
