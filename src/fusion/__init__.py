"""fusion: text + image (+ tabular) features -> one weighted-BCE multi-label head.

Imports both `radlabel` and `radvision` (see docs/index.md). Its encoders and `FusionClassifier` are the
subject of a later issue; this package exists now so the distribution layout is final.
"""
