"""Text processing: in-graph subword tokenization with tensorflow-text."""

from zoo.text.subword_tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    SubwordTokenizer,
    TokenizerTexts,
)

__all__ = ["BOS_ID", "EOS_ID", "PAD_ID", "UNK_ID", "SubwordTokenizer", "TokenizerTexts"]
