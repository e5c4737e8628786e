"""Runnable examples that sit next to the pipeline; not part of the installed package."""
