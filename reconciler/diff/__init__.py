"""Desired versus live: normalize, compare (fast equality path), report the differences."""
