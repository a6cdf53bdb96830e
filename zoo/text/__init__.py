"""Text processing: in-graph tokenization with tensorflow-text (SentencePiece subwords or
whitespace words)."""

from zoo.text.subword_tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    SubwordTokenizer,
    TokenizerTexts,
)
from zoo.text.tokenizers import (
    TOKENIZERS,
    tokenizer_from_base64,
    tokenizer_from_bytes,
    train_tokenizer,
)
from zoo.text.word_tokenizer import WordTokenizer

__all__ = ["BOS_ID", "EOS_ID", "PAD_ID", "TOKENIZERS", "UNK_ID", "SubwordTokenizer",
           "TokenizerTexts", "WordTokenizer", "tokenizer_from_base64", "tokenizer_from_bytes",
           "train_tokenizer"]
