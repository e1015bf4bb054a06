"""Words of any script, for the text metrics of languages other than English (ROUGE, METEOR).

rouge-score's own tokenizer keeps only ASCII letters and digits, which would drop every Slovene č or
Chinese character; these tokens are lowercased Unicode words, each CJK character a token of its own.
"""

from __future__ import annotations

import re


class UnicodeWordTokenizer:
    """Lowercased Unicode words; each Chinese or Japanese character (Han, kana) is a token of its own."""

    _CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    _TOKEN = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+")

    def tokenize(self, text: str) -> list[str]:
        return self._TOKEN.findall(text.lower())
