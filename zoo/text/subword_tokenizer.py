"""In-graph subword tokenization: a SentencePiece model learned from the training data, run by
tensorflow-text's `SentencepieceTokenizer` (the `SentencepieceOp` family ships in stock TF Serving).
"""

import base64
import hashlib
import io

import sentencepiece
import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.python.ops import sentencepiece_tokenizer as tf_text_sentencepiece

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
WORD_START = "\u2581"  # SentencePiece's mark of a piece that starts a word


class _SharedSentencepieceModel(tf_text_sentencepiece._SentencepieceModelResource):
    """tf-text's SentencePiece model resource, created under a `shared_name`.

    tf-text creates the model as a kernel-private resource, which dies with the eager kernel
    that made it; `tf.random.set_seed` (hence `keras.utils.set_random_seed`, called by every
    training) clears the eager kernel cache, so a second training in the same process broke
    every earlier tokenizer ("Resource .../SentencepieceOp... does not exist"). A shared name
    (one per model proto: the same proto means the same resource) keeps it in the resource
    manager for the process's life.
    """

    def _create_resource(self):
        shared_name = "zoo_sentencepiece_" + hashlib.sha1(self._model).hexdigest()[:20]
        return tf_text_sentencepiece.gen_sentencepiece_tokenizer.sentencepiece_op(
            model=self._model, shared_name=shared_name)


class TokenizerTexts(list):
    """A list of training texts for `SubwordTokenizer.train` that also names the
    `user_defined_symbols` to keep whole (a task's `tokenizer_texts` may return one)."""

    def __init__(self, texts, user_defined_symbols=()):
        super().__init__(texts)
        self.user_defined_symbols = tuple(user_defined_symbols)


class SubwordTokenizer(tf.Module):
    """Raw strings ⇄ subword ids, entirely with TensorFlow ops.

    Args:
        model_proto: bytes of a trained SentencePiece model (see `SubwordTokenizer.train`).

    Example:

    ```python
    tokenizer = SubwordTokenizer.train(["ein Mann", "a man"], vocab_size=30)
    ids = tokenizer.tokenize(tf.constant(["ein Mann"]))  # RaggedTensor of int32
    tokenizer.detokenize(ids)
    ```
    """

    file_name = "subword.model"  # in a run's `tokenizer/` artifacts

    def __init__(self, model_proto):
        super().__init__(name="subword_tokenizer")
        self.model_proto = bytes(model_proto)
        self._tokenizer = tf_text.SentencepieceTokenizer(model=self.model_proto, out_type=tf.int32)
        self._tokenizer._model_resource = _SharedSentencepieceModel(self.model_proto, None)
        processor = sentencepiece.SentencePieceProcessor(model_proto=self.model_proto)
        self.vocab = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]

    @classmethod
    def train(cls, sentences, vocab_size=8000, model_type="bpe", character_coverage=1.0,
              seed_sentences=2_000_000, user_defined_symbols=()):
        """Learn a SentencePiece model from an iterable of strings.

        `user_defined_symbols`: strings always kept as one piece each (SentencePiece's option
        of that name), e.g. the dialogue speaker tags `#Person1#:`; by default those of
        `sentences` when it is a `TokenizerTexts` (how a task asks for them: the trainer
        passes its `tokenizer_texts` as they are)."""
        symbols = tuple(user_defined_symbols) or tuple(
            getattr(sentences, "user_defined_symbols", ()))
        buffer = io.BytesIO()
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=buffer,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            input_sentence_size=seed_sentences,
            shuffle_input_sentence=True,
            pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
            hard_vocab_limit=False,
            num_threads=2,
            minloglevel=2,
            **({"user_defined_symbols": list(symbols)} if symbols else {}),
        )
        return cls(buffer.getvalue())

    @property
    def vocab_size(self):
        return len(self.vocab)

    def tokenize(self, texts):
        """`[batch]` strings → RaggedTensor `[batch, (tokens)]` of int32 ids (no BOS/EOS)."""
        return self._tokenizer.tokenize(texts)

    def tokenize_with_offsets(self, texts):
        """`[batch]` strings → `(ids, starts, ends)` RaggedTensors `[batch, (tokens)]`: int32 ids
        and int64 UTF-8 BYTE offsets, `text[start:end]` being the token's surface (a piece's
        "▁" covers the space before it)."""
        return self._tokenizer.tokenize_with_offsets(texts)

    def detokenize(self, ids):
        """int ids `[batch, len]` (dense, 0-padded, or ragged) → `[batch]` strings."""
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids, padding=PAD_ID)
        return self._tokenizer.detokenize(ids)

    def id_to_string(self, ids):
        return self._tokenizer.id_to_string(ids)

    @staticmethod
    def whole_word(piece):
        """The word a piece is, when it is one from its start ("▁film" → "film"); None for a
        piece inside a word."""
        word = piece.removeprefix(WORD_START)
        return word if word and word != piece else None

    # Serialized form: the model proto, as base64 text in a Keras config / MLflow artifact.
    def to_bytes(self):
        return self.model_proto

    def to_base64(self):
        return base64.b64encode(self.model_proto).decode("ascii")

    @classmethod
    def from_base64(cls, text):
        return cls(base64.b64decode(text))

    def save(self, path):
        with open(path, "wb") as handle:
            handle.write(self.model_proto)

    @classmethod
    def load(cls, path):
        with open(path, "rb") as handle:
            return cls(handle.read())

    def save_vocabulary(self, path):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(self.vocab) + "\n")
