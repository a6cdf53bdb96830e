"""Skip-gram piece vectors (gensim Word2Vec over the model's own subword pieces)."""

import numpy as np
import pytest

from zoo.data import data_dir
from zoo.data.english_text import CORPORA, unlabeled_english
from zoo.text import SubwordTokenizer
from zoo.text.word_vectors import piece_sentences, train_piece_vectors


def _corpus():
    # "cat" and "dog" share every context; "rain" never shares one with them.
    shared = ["the {} sat on the mat", "a {} ate the food", "my {} is sleeping now"]
    other = ["heavy rain fell over the hills", "cold rain came from the north sea"]
    texts = []
    for _ in range(150):
        texts += [pattern.format(animal) for pattern in shared for animal in ("cat", "dog")]
        texts += other
    return texts


def test_pieces_of_shared_contexts_get_similar_vectors():
    texts = _corpus()
    tokenizer = SubwordTokenizer.train(texts, vocab_size=100)
    # sample=0: in so small a corpus every word is "frequent" and would be subsampled away
    vectors, found = train_piece_vectors(tokenizer, texts, 16, window=3, epochs=10, sample=0,
                                         workers=1)
    assert vectors.shape == (tokenizer.vocab_size, 16) and vectors.dtype == np.float32
    seen = {int(piece) for sentence in piece_sentences(tokenizer, texts) for piece in sentence}
    assert set(np.flatnonzero(found)) == seen
    assert not vectors[~found].any()

    def vector(word):
        [[piece]] = tokenizer.tokenize([word]).to_list()  # each word is one piece here
        return vectors[piece] / np.linalg.norm(vectors[piece])

    assert vector("cat") @ vector("dog") > 0.9
    assert vector("cat") @ vector("rain") < 0.5


def test_no_text_is_a_clear_error():
    tokenizer = SubwordTokenizer.train(_corpus(), vocab_size=100)
    with pytest.raises(ValueError, match="no text"):
        train_piece_vectors(tokenizer, ["", ""], 8)


def test_unlabeled_english_reads_training_files_only():
    if not (data_dir() / "qa" / "train.jsonl").is_file():
        pytest.skip("corpora not found under ZOO_DATA_DIR")
    texts = unlabeled_english(sorted(CORPORA), limit=3)
    assert len(texts) == 3 * len(CORPORA) and all(isinstance(t, str) and t for t in texts)
    with pytest.raises(ValueError, match="unknown corpora"):
        unlabeled_english(["sst2_test"])
