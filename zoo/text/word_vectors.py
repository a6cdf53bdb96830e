"""Skip-gram vectors of subword pieces (Mikolov et al. 2013), learned with gensim's Word2Vec
from unlabeled text, to initialise a model's embedding table.

The pieces are the ones the model reads: texts go through the model's own normalisation and
SentencePiece tokenizer first, and each piece id is one word for Word2Vec.
"""

import gensim
import numpy as np
import tensorflow as tf

from zoo.data.english_text import unlabeled_english

TOKENIZE_CHUNK = 4096  # texts per in-graph tokenizer call


def piece_sentences(tokenizer, texts, normalize=None):
    """Texts → lists of piece ids as strings (Word2Vec's words); empty texts dropped."""
    sentences = []
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        chunk = tf.constant(texts[start:start + TOKENIZE_CHUNK])
        if normalize is not None:
            chunk = normalize(chunk)
        for row in tokenizer.tokenize(chunk).to_list():
            if row:
                sentences.append([str(piece) for piece in row])
    return sentences


def train_piece_vectors(tokenizer, texts, dim, *, normalize=None, window=5, epochs=5,
                        negative=10, sample=1e-4, seed=0, workers=2):
    """Skip-gram with negative sampling over `texts`' pieces.

    Args:
        tokenizer: a `zoo.text.SubwordTokenizer`.
        texts: list of strings.
        dim: int, vector size (the model's `embedding_dim`).
        normalize: optional function of a string tensor applied before tokenizing.
        window, epochs, negative, sample: Word2Vec's context window, passes, negative samples
            and frequent-word subsampling threshold.
        seed, workers: Word2Vec's seed and threads (one thread is exactly reproducible).

    Returns:
        `(vectors, found)`: float32 `[vocab_size, dim]` vectors and a bool `[vocab_size]` mask
        of the pieces that occurred (the other rows are zero; callers keep their own init).
    """
    sentences = piece_sentences(tokenizer, texts, normalize)
    if not sentences:
        raise ValueError("no text to learn word vectors from")
    model = gensim.models.Word2Vec(sentences, vector_size=dim, window=window, min_count=1,
                                   sg=1, negative=negative, sample=sample, epochs=epochs,
                                   seed=seed, workers=workers)
    vectors = np.zeros((tokenizer.vocab_size, dim), np.float32)
    found = np.zeros(tokenizer.vocab_size, bool)
    for word, index in model.wv.key_to_index.items():
        vectors[int(word)] = model.wv.vectors[index]
        found[int(word)] = True
    return vectors, found


def initialize_embeddings(tables, tokenizer, own_texts, config, normalize=None):
    """With the config's `word_vectors` on: learns piece vectors from the unlabeled English of
    `word_vector_corpora` plus the task's `own_texts` (its training split), with the
    `word_vector_*` keys, and writes them into each embedding variable of `tables` (pieces
    never seen keep their init).

    Returns the metrics to log (how many texts were read, how many pieces got a vector), or
    None when `word_vectors` is off and nothing was changed.
    """
    if not config["word_vectors"]:
        return None
    texts = unlabeled_english(config["word_vector_corpora"], config["word_vector_limit"])
    texts += list(own_texts)
    vectors, found = train_piece_vectors(
        tokenizer, texts, config["embedding_dim"], normalize=normalize,
        window=config["word_vector_window"], epochs=config["word_vector_epochs"],
        seed=config["seed"])
    for table in tables:
        table.assign(np.where(found[:, None], vectors, table.numpy()))
    return {"word_vector_texts": len(texts), "word_vector_pieces": int(found.sum())}
