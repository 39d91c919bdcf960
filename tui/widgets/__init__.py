"""Widgets the wizard screens share."""
