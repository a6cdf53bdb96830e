"""The zoo's tokenizer kinds (config key `tokenization`), and a tokenizer back from its saved
bytes whichever kind it is."""

import base64

from zoo.text.subword_tokenizer import SubwordTokenizer
from zoo.text.word_tokenizer import HEADER, WordTokenizer

TOKENIZERS = {"subword": SubwordTokenizer, "word": WordTokenizer}


def train_tokenizer(kind, texts, vocab_size):
    """A `kind` tokenizer (a key of `TOKENIZERS`) learned from `texts`."""
    return TOKENIZERS[kind].train(texts, vocab_size=vocab_size)


def tokenizer_from_bytes(data):
    """A saved tokenizer (`tokenizer.save`): a word vocabulary or a SentencePiece model."""
    data = bytes(data)
    if data.startswith(HEADER.encode("utf-8")):
        return WordTokenizer.from_bytes(data)
    return SubwordTokenizer(data)


def tokenizer_from_base64(text):
    """The tokenizer of a model config's `tokenizer` (`tokenizer.to_base64()`)."""
    return tokenizer_from_bytes(base64.b64decode(text))

