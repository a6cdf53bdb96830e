"""Word vectors for the embeddings: skip-gram piece vectors (gensim Word2Vec over the model's
own subword pieces) and pretrained vectors read from a file."""

import numpy as np
import pytest

from tests.support import TINY_TRANSLATOR
from zoo.data import data_dir
from zoo.data.english_text import CORPORA, unlabeled_english
from zoo.text import SubwordTokenizer
from zoo.text.subword_tokenizer import WORD_START
from zoo.text.word_vectors import (
    embedding_tables,
    initialize_embeddings,
    load_vectors_file,
    piece_sentences,
    train_piece_vectors,
)


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


# ---------------------------------------------------------------- pretrained vectors from a file
def _write_glove(path, words, dim, seed=0):
    """A GloVe-format file (no header) of `words`, values written with 3 decimals; returns
    the vectors as the file holds them."""
    rng = np.random.default_rng(seed)
    vectors = {word: np.round(rng.normal(size=dim), 3).astype(np.float32) for word in words}
    path.write_text("".join(f"{w} {' '.join(f'{x:.3f}' for x in v)}\n"
                            for w, v in vectors.items()), encoding="utf-8")
    return vectors


def _word_start_pieces(tokenizer):
    pieces = [p.decode() for p in tokenizer.id_to_string(np.arange(tokenizer.vocab_size)).numpy()]
    return [p[1:] for p in pieces[4:] if p.startswith(WORD_START) and len(p) > 1]


def _whole_word_pieces(tokenizer):
    pieces = [p.decode() for p in tokenizer.id_to_string(np.arange(tokenizer.vocab_size)).numpy()]
    return {p[1:]: i for i, p in enumerate(pieces)
            if p.startswith(WORD_START) and len(p) > 2 and p[1:].isalpha()}


def test_a_vectors_file_initialises_every_embedding(tmp_path):
    import zoo
    from zoo.tasks import get_task

    config = zoo.resolve_config("luong_translator", TINY_TRANSLATOR | {"train_limit": 400})
    task = get_task(config["task"])
    examples = task.read_split(config, "train")
    texts = task.tokenizer_texts(config, examples)
    tokenizer = SubwordTokenizer.train(texts, vocab_size=300)
    whole = _whole_word_pieces(tokenizer)
    chosen = sorted(whole)[:25]
    # A word that is no piece of its own: its pieces get (a share of) its vector.
    long_words = sorted({w for t in texts for w in t.split() if w.isalpha() and len(w) > 9
                         and w not in whole})
    vectors = _write_glove(tmp_path / "vectors.txt", chosen + long_words[:3],
                           config["embedding_dim"])
    model = zoo.build("luong_translator", tokenizer=tokenizer, **TINY_TRANSLATOR,
                      word_vectors=str(tmp_path / "vectors.txt"))
    tables = embedding_tables(model, tokenizer.vocab_size)
    assert len(tables) == 2  # the encoder's and the decoder's
    before = [t.numpy() for t in tables]
    logged = task.initialize(model, model_config(config, tmp_path), tokenizer, examples)

    starts = [w for w in _word_start_pieces(tokenizer) if w in vectors or w.lower() in vectors]
    assert logged["word_vector_whole_words"] == len(starts) >= len(chosen)
    assert logged["word_vector_pieces"] > len(chosen)  # the long words' pieces too
    assert logged["word_vector_coverage"] == pytest.approx(
        logged["word_vector_pieces"] / tokenizer.vocab_size)
    for table, old in zip(tables, before, strict=True):
        new = table.numpy()
        for word in chosen:  # a piece that spells a word: exactly the file's vector
            np.testing.assert_array_equal(new[whole[word]], vectors[word])
        np.testing.assert_array_equal(new[0], old[0])  # padding keeps its init
        changed = np.flatnonzero((new != old).any(axis=1))
        assert len(changed) == logged["word_vector_pieces"]


def model_config(config, tmp_path):
    return config | {"word_vectors": str(tmp_path / "vectors.txt")}


def test_word2vec_text_and_binary_read_like_glove(tmp_path):
    import gensim

    words = ["mann", "frau", "hund"]
    vectors = _write_glove(tmp_path / "glove.txt", words, 4)
    keyed = gensim.models.KeyedVectors(4)
    keyed.add_vectors(words, [vectors[w] for w in words])
    keyed.save_word2vec_format(str(tmp_path / "vectors.vec"))
    keyed.save_word2vec_format(str(tmp_path / "vectors.bin"), binary=True)
    for name in ("glove.txt", "vectors.vec", "vectors.bin"):
        loaded = load_vectors_file(tmp_path / name)
        for word in words:
            np.testing.assert_array_equal(loaded[word], vectors[word])
    with pytest.raises(FileNotFoundError, match="word_vectors"):
        load_vectors_file(tmp_path / "missing.txt")


def test_a_vectors_file_of_another_size_is_a_clear_error(tmp_path):
    import zoo
    from zoo.config import ConfigError

    _write_glove(tmp_path / "vectors.txt", ["mann"], 7)
    model = zoo.build("luong_translator", **TINY_TRANSLATOR)
    tokenizer = SubwordTokenizer.train(["ein mann", "a man"] * 20, vocab_size=30)
    with pytest.raises(ValueError, match="7-dimensional vectors, the embedding 16"):
        initialize_embeddings(embedding_tables(model, 1000), tokenizer, ["ein mann"],
                              {"word_vectors": str(tmp_path / "vectors.txt")})
    with pytest.raises(ConfigError, match="word_vectors"):
        zoo.resolve_config("luong_translator", {"word_vectors": True})  # skip-gram: not here


def test_the_coverage_is_logged_to_mlflow(tracking_dir, tmp_path):
    import mlflow

    from zoo.training import train

    _write_glove(tmp_path / "vectors.txt", ["mann", "frau", "hund", "man", "woman", "dog"], 16)
    result = train("luong_translator",
                   TINY_TRANSLATOR | {"train_limit": 400, "epochs": 1,
                                      "word_vectors": str(tmp_path / "vectors.txt")},
                   output_dir=tmp_path / "runs", verbose=0)
    metrics = mlflow.MlflowClient().get_run(result.run_id).data.metrics
    assert 0 < metrics["word_vector_coverage"] <= 1
    assert metrics["word_vector_whole_words"] >= 1
    assert metrics["word_vector_pieces"] >= metrics["word_vector_whole_words"]
