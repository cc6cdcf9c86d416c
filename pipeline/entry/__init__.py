"""Entry points: argument parsing (``python -m pipeline``, ``avemotion``) and the synthetic
method demo, each a thin layer that makes one call into ``research`` or ``serve``.
May import every other layer; nothing imports it except ``pipeline.__main__``.
"""
