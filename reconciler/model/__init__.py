"""Typed views of the resources users write, and the values passed between parts."""
