"""The word tokenizer (`tokenization: word`): whitespace tokens looked up in a vocabulary
learned from the training text, in the graph, saved and restored like the subword one."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.options import DATA
from zoo.text import (
    PAD_ID,
    TOKENIZERS,
    UNK_ID,
    SubwordTokenizer,
    WordTokenizer,
    tokenizer_from_base64,
    tokenizer_from_bytes,
    train_tokenizer,
)
from zoo.text.word_tokenizer import SPECIAL_TOKENS

TEXTS = ["a gorgeous , witty film", "a dull film", "the film is n't dull"]


def test_vocabulary_is_the_most_frequent_words_after_the_special_tokens():
    tokenizer = WordTokenizer.train(TEXTS, vocab_size=8)
    # film ×3, a ×2, dull ×2, then ties alphabetically: ",", "gorgeous", ...
    assert tokenizer.vocab == [*SPECIAL_TOKENS, "film", "a", "dull", ","]
    assert WordTokenizer.train(TEXTS, vocab_size=100).vocab_size == 4 + 9
    assert WordTokenizer.train(TEXTS, vocab_size=100, min_count=2).vocab[4:] == [
        "film", "a", "dull"]


def test_tokenize_looks_words_up_and_unknown_words_are_unk():
    tokenizer = WordTokenizer.train(TEXTS, vocab_size=100)
    ids = tokenizer.tokenize(tf.constant(["a witty  film !", ""]))
    index = {word: i for i, word in enumerate(tokenizer.vocab)}
    assert ids.to_list() == [[index["a"], index["witty"], index["film"], UNK_ID], []]
    assert ids.dtype == tf.int32
    dense = ids.to_tensor(default_value=PAD_ID)
    assert tokenizer.detokenize(dense).numpy().tolist() == [b"a witty film <unk>", b""]
    strings = tokenizer.id_to_string(dense).numpy()
    assert strings[0].tolist() == [b"a", b"witty", b"film", b"<unk>"]
    words, starts, ends = tokenizer.tokenize_with_offsets(tf.constant(["a witty  film"]))
    assert words.to_list() == ids[:1, :3].to_list()
    assert starts.to_list() == [[0, 2, 9]] and ends.to_list() == [[1, 7, 13]]


def test_survives_reseeding_and_runs_in_a_tf_function():
    tokenizer = WordTokenizer.train(TEXTS, vocab_size=100)
    before = tokenizer.tokenize(tf.constant(TEXTS)).to_list()
    keras.utils.set_random_seed(3)  # clears TensorFlow's eager kernel cache (see subword)
    traced = tf.function(lambda texts: tokenizer.tokenize(texts).to_tensor())
    np.testing.assert_array_equal(traced(tf.constant(TEXTS)).numpy(),
                                  tf.ragged.constant(before).to_tensor().numpy())


def test_saved_forms_round_trip_and_tell_the_kinds_apart(tmp_path):
    words = WordTokenizer.train(TEXTS, vocab_size=100)
    subwords = SubwordTokenizer.train(TEXTS * 20, vocab_size=30)
    for tokenizer in (words, subwords):
        again = tokenizer_from_base64(tokenizer.to_base64())
        assert type(again) is type(tokenizer) and list(again.vocab) == list(tokenizer.vocab)
        path = tmp_path / tokenizer.file_name
        tokenizer.save(path)
        again = tokenizer_from_bytes(path.read_bytes())
        assert again.tokenize(tf.constant(TEXTS)).to_list() == tokenizer.tokenize(
            tf.constant(TEXTS)).to_list()
    with pytest.raises(ValueError, match="not a word vocabulary"):
        WordTokenizer.from_bytes(b"film\n")
    with pytest.raises(ValueError, match="starts with"):
        WordTokenizer(["film", "a"])


def test_the_option_offers_every_kind_and_whole_words():
    assert DATA["tokenization"].choices == tuple(TOKENIZERS)
    assert type(train_tokenizer("word", TEXTS, 100)) is WordTokenizer
    assert WordTokenizer.whole_word("film") == "film"
    assert SubwordTokenizer.whole_word("\u2581film") == "film"
    assert SubwordTokenizer.whole_word("ilm") is None
    assert SubwordTokenizer.whole_word("\u2581") is None


def test_a_word_vocabulary_takes_each_words_own_vector_from_a_file(tmp_path):
    from zoo.text.word_vectors import file_piece_vectors, load_vectors_file

    tokenizer = WordTokenizer.train(TEXTS, vocab_size=100)
    vectors_file = tmp_path / "vectors.txt"  # GloVe's text format: word, then its vector
    vectors_file.write_text("film 1 2 3\ndull 4 5 6\nwitty 7 8 9\nabsent 0 0 1\n")
    vectors, found, whole = file_piece_vectors(tokenizer, load_vectors_file(vectors_file),
                                               TEXTS)
    index = {word: i for i, word in enumerate(tokenizer.vocab)}
    np.testing.assert_array_equal(vectors[index["film"]], [1, 2, 3])
    np.testing.assert_array_equal(vectors[index["dull"]], [4, 5, 6])
    np.testing.assert_array_equal(vectors[index["witty"]], [7, 8, 9])
    assert sorted(np.flatnonzero(found)) == sorted(index[w] for w in ("film", "dull", "witty"))
    assert np.array_equal(found, whole)  # every entry is a whole word: none takes a mean
    assert not found[:4].any()  # padding, unknown, BOS, EOS keep their init
