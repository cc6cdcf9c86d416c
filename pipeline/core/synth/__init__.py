"""The synthetic corpus: a RAVDESS-layout, seeded, offline stand-in for real data.

``profiles`` holds the emotion profiles (data with citations), ``voice`` the
source-filter speech synthesizer, ``face`` the drawn face and its 68 landmarks,
``corpus`` the writer: ``generate(out, n_actors=8, seed=7)``. Honestly synthetic:
see docs/synthetic.md.
"""
