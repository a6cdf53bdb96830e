"""Raw sentences in the text form of the Stanford Sentiment Treebank (PTB-tokenized), in-graph,
so that a served classifier sees what it was trained on."""

import tensorflow as tf

_NORMALIZATION = (
    (r"n't\b", " n't"),
    (r"'(s|re|ve|ll|d|m)\b", r" '\1"),
    (r"\.\.\.", " ... "),
    (r"([!?;:()\"])", r" \1 "),
    (r",(\s|$)", r" ,\1"),          # not inside numbers (10,000)
    (r"([^.\s])\.\s*$", r"\1 ."),  # the final full stop, not "mr." or "u.s."
    (r"\s+", " "),
)


def normalize_sst(texts, lowercase=True):
    """Raw strings → SST's text form (lower-cased, punctuation and clitics split off)."""
    texts = tf.convert_to_tensor(texts, tf.string)
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    for pattern, rewrite in _NORMALIZATION:
        texts = tf.strings.regex_replace(texts, pattern, rewrite)
    return tf.strings.strip(texts)
