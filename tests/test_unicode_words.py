"""Unicode words for the text metrics of languages other than English."""

from __future__ import annotations

from peftbench.tasks.unicode_words import UnicodeWordTokenizer


def test_unicode_tokenizer_splits_words_and_cjk_characters():
    tokens = UnicodeWordTokenizer().tokenize("Železniška postaja, abc你好 x_y 3.5")
    assert tokens == ["železniška", "postaja", "abc", "你", "好", "x", "y", "3", "5"]


def test_unicode_tokenizer_lowercases_and_drops_punctuation_only_text():
    assert UnicodeWordTokenizer().tokenize("ČAŠA, Čaša!") == ["čaša", "čaša"]
    assert UnicodeWordTokenizer().tokenize(" ,.!? ") == []
