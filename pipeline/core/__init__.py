"""The shared lower layer: label sets, corpus adapters and the synthetic corpus, decoding
(PyAV), audio features and VAD, frame sampling, face finding and cropping.
Both paths use it; it imports no other part of ``pipeline``, nor ``models`` or Streamlit.
"""
