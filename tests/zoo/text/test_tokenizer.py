"""The in-graph SentencePiece tokenizer."""

import tensorflow as tf

from zoo.text import SubwordTokenizer

CORPUS = ["ein Mann fährt Fahrrad", "a man rides a bike", "zwei Hunde spielen"] * 40


def test_round_trip_detokenizes_to_the_input():
    tokenizer = SubwordTokenizer.train(CORPUS, vocab_size=50)
    ids = tokenizer.tokenize(tf.constant(["ein Mann fährt Fahrrad"]))
    assert tokenizer.detokenize(ids).numpy()[0].decode() == "ein Mann fährt Fahrrad"


def test_tokenizer_survives_a_new_global_seed():
    # keras.utils.set_random_seed (every training) clears TF's eager kernel cache; tf-text's
    # kernel-private model resource died with it and broke every earlier tokenizer.
    tokenizer = SubwordTokenizer.train(CORPUS, vocab_size=50)
    before = tokenizer.tokenize(tf.constant(["zwei Hunde"])).flat_values.numpy()
    tf.random.set_seed(1234)
    after = tokenizer.tokenize(tf.constant(["zwei Hunde"])).flat_values.numpy()
    assert list(before) == list(after)
