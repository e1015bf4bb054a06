"""Coreference resolution: which spans of a document name the same entity (CoNLL-2012, SentiCoref).

One place for the task's side; the model is models/heads/coreference.py.

- `task.py`: the `coreference` task type (registered by `peftbench.tasks`), clusters from labels and
  from predicted links;
- `documents.py`: the one form every reader gives (a document's sentences and clusters), from JSONL
  rows or the CLARIN.SI corpora's hub schema;
- `conll.py`: the CoNLL-2012 `*_conll` column files, read into that form (tasks.sources reads them);
- `encoding.py`: documents as windows of candidate spans, and their batches;
- `scores.py`: MUC, B³, CEAFφ4 and the CoNLL F1, as the reference scorer defines them.

This file imports none of them: `tasks.sources` reads `*_conll` files through `conll.py`, and the task
type reads its sources, so registering the task type here would make the two import each other.
"""
