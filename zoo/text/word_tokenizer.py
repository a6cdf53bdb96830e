"""In-graph word tokenization: whitespace tokens (tensorflow-text's `WhitespaceTokenizer`, in
stock TF Serving's tf-text ops) looked up in a static vocabulary table, unknown words → `UNK_ID`.

For text that is already tokenized (SST's PTB tokens), a word keeps its meaning whole where a
subword vocabulary would split it (`un`, `watch`, `able`).
"""

import base64
import collections

import tensorflow as tf
import tensorflow_text as tf_text

from zoo.text.subword_tokenizer import PAD_ID, UNK_ID

SPECIAL_TOKENS = ("<pad>", "<unk>", "<s>", "</s>")  # ids PAD_ID, UNK_ID, BOS_ID, EOS_ID
HEADER = "#zoo word vocabulary v1"  # first line of the saved form: tells it from SentencePiece


class WordTokenizer(tf.Module):
    """Raw strings ⇄ word ids with TensorFlow ops: split on whitespace, look up each word.

    Args:
        vocab: list of tokens, index = id; the first four are `SPECIAL_TOKENS` (see `train`).

    Example:

    ```python
    tokenizer = WordTokenizer.train(["a gorgeous , witty film", "a dull film"], vocab_size=20)
    ids = tokenizer.tokenize(tf.constant(["a witty film !"]))  # [[4, 9, 5, 1]]: "!" is unknown
    tokenizer.detokenize(ids)                                   # [b"a witty film <unk>"]
    ```
    """

    file_name = "words.txt"

    def __init__(self, vocab):
        super().__init__(name="word_tokenizer")
        self.vocab = [str(token) for token in vocab]
        if tuple(self.vocab[:len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"a word vocabulary starts with {SPECIAL_TOKENS}, got "
                             f"{self.vocab[:len(SPECIAL_TOKENS)]}")
        words = self.vocab[len(SPECIAL_TOKENS):]
        self._splitter = tf_text.WhitespaceTokenizer()
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(words, tf.string),
                tf.range(len(SPECIAL_TOKENS), len(self.vocab), dtype=tf.int64)),
            default_value=UNK_ID)
        self._strings = tf.constant(self.vocab, tf.string)

    @classmethod
    def train(cls, sentences, vocab_size=20000, min_count=1):
        """The `vocab_size - 4` most frequent whitespace tokens of `sentences` seen at least
        `min_count` times (ties in alphabetical order), after the special tokens."""
        counts = collections.Counter(word for text in sentences for word in text.split())
        ranked = sorted((word for word, count in counts.items()
                         if count >= min_count and word not in SPECIAL_TOKENS),
                        key=lambda word: (-counts[word], word))
        return cls(SPECIAL_TOKENS + tuple(ranked[:max(vocab_size - len(SPECIAL_TOKENS), 0)]))

    @property
    def vocab_size(self):
        return len(self.vocab)

    def _lookup(self, words):
        return tf.cast(tf.ragged.map_flat_values(self._table.lookup, words), tf.int32)

    def tokenize(self, texts):
        """`[batch]` strings → RaggedTensor `[batch, (words)]` of int32 ids (no BOS/EOS)."""
        return self._lookup(self._splitter.tokenize(texts))

    def tokenize_with_offsets(self, texts):
        """`[batch]` strings → `(ids, starts, ends)` RaggedTensors: int32 ids and int64 UTF-8
        byte offsets of each word."""
        words, starts, ends = self._splitter.tokenize_with_offsets(texts)
        return self._lookup(words), starts, ends

    def id_to_string(self, ids):
        if isinstance(ids, tf.RaggedTensor):
            return tf.ragged.map_flat_values(tf.gather, self._strings, ids)
        return tf.gather(self._strings, ids)

    def detokenize(self, ids):
        """int ids `[batch, len]` (dense, 0-padded, or ragged) → `[batch]` space-joined words."""
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids, padding=PAD_ID)
        return tf.strings.reduce_join(self.id_to_string(ids), axis=-1, separator=" ")

    @staticmethod
    def whole_word(piece):
        """The word a vocabulary entry stands for: every entry is a whole word."""
        return piece

    # Serialized form: the vocabulary as text after `HEADER`, one token per line.
    def to_bytes(self):
        return ("\n".join((HEADER, *self.vocab)) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data):
        lines = data.decode("utf-8").split("\n")
        if lines[0] != HEADER:
            raise ValueError(f"not a word vocabulary (its first line is not {HEADER!r})")
        return cls([line for line in lines[1:] if line])

    def to_base64(self):
        return base64.b64encode(self.to_bytes()).decode("ascii")

    def save(self, path):
        with open(path, "wb") as handle:
            handle.write(self.to_bytes())

    def save_vocabulary(self, path):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(self.vocab) + "\n")
