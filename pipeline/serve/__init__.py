"""The serving path: read a bundle, ``analyze(clip, bundle) -> Analysis``, the fusers that
serve and the answer records (with their calibration words). Used by the CLI's ``predict``,
the Analyze and Live pages. Imports ``pipeline.core`` and ``models`` only, never research.
"""
