"""Task heads, one module each: what a head adds to a family's model and how it scores a batch.

Each head is a mixin over a transformers class (see `models.loading.mixed_class`) or, for
coreference, a model of its own over the family's encoder; `models.loading` attaches them. What
every head reads from a batch the same way (named inputs, the ignored label, the last attended
token) is in `inputs.py`.
"""
