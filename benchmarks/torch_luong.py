"""A PyTorch CPU twin of zoo's `luong_translator`, for side-by-side comparisons (issue 7).

The same model as `zoo.models.RNNTranslator` with `attention="luong_general"`: embedding +
stacked bidirectional LSTM encoder, decoder initial state = forward and backward final states
joined per layer, stacked LSTM decoder with input feeding, Luong "general" score
`h_tᵀ W_a h_s`, attentional state `tanh(W_c [c_t; h_t])` (no bias), output layer with bias;
dropout on both embeddings, between LSTM layers and on the attentional state. The same
training step: label-smoothed cross-entropy over non-padding tokens, Adam, global-norm
clipping, linear warm-up then cosine decay (`zoo.training.schedules.WarmupCosineDecay`).

One deliberate difference in form, none in function: a Keras LSTM has one bias per gate,
torch's has two (`b_ih + b_hh`). Here `b_hh` is frozen at zero, so the trainable parameters
and their count are the Keras model's; `port_keras_to_torch` / `port_torch_to_keras` copy
weights both ways (torch → Keras folds `b_hh` into the bias, so it also accepts a torch model
whose `b_hh` is not zero).

    python benchmarks/torch_luong.py check  [--batches PATH]   # equivalence on real batches
    python benchmarks/torch_luong.py train  --batches PATH --steps 50
    python benchmarks/torch_luong.py decode --batches PATH [--compile]

`--batches` is an `.npz` written by `benchmarks/export_batches.py` (the zoo's own tf.data
batches and tokenizer), so both frameworks see the same padded batches in the same order.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PAD_ID, BOS_ID, EOS_ID = 0, 2, 3


class TorchLuongTranslator(nn.Module):
    """Torch version of `RNNTranslator(attention="luong_general")`; arguments as there."""

    def __init__(self, vocab_size=8000, embedding_dim=256, encoder_units=256, encoder_layers=2,
                 bidirectional=True, decoder_units=512, dropout=0.2):
        super().__init__()
        directions = 2 if bidirectional else 1
        if encoder_units * directions != decoder_units:
            raise ValueError("decoder_units must equal encoder_units × directions")
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.encoder_units = encoder_units
        self.encoder_layers = encoder_layers
        self.bidirectional = bidirectional
        self.decoder_units = decoder_units
        self.dropout = dropout
        self.source_embedding = nn.Embedding(vocab_size, embedding_dim)
        # nn.LSTM's inter-layer dropout is on each layer's output but the last: the Keras
        # encoder's placement (embedding dropout is applied before the LSTM).
        self.encoder = nn.LSTM(embedding_dim, encoder_units, encoder_layers, batch_first=True,
                               bidirectional=bidirectional,
                               dropout=dropout if encoder_layers > 1 else 0.0)
        self.target_embedding = nn.Embedding(vocab_size, embedding_dim)
        self.cells = nn.ModuleList(
            nn.LSTMCell(embedding_dim + decoder_units if i == 0 else decoder_units,
                        decoder_units) for i in range(encoder_layers))
        self.query_projection = nn.Linear(decoder_units, decoder_units, bias=False)  # W_aᵀ
        self.attentional_projection = nn.Linear(2 * decoder_units, decoder_units, bias=False)
        self.output_projection = nn.Linear(decoder_units, vocab_size)
        self.freeze_hidden_biases()

    def freeze_hidden_biases(self):
        """Zero and freeze torch's second LSTM bias (Keras has one bias per gate)."""
        for name, parameter in self.named_parameters():
            if "bias_hh" in name:
                with torch.no_grad():
                    parameter.zero_()
                parameter.requires_grad_(False)

    def init_uniform(self, scale=0.1, seed=0):
        """The anchor's initialisation: every trainable weight uniform in ±scale."""
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for parameter in self.parameters():
                if parameter.requires_grad:
                    parameter.copy_(torch.rand(parameter.shape, generator=generator)
                                    * 2 * scale - scale)
        return self

    def count_params(self):
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # -- encoder ----------------------------------------------------------------------------
    def encode(self, source_ids):
        """→ `(memory [B, S, D], mask [B, S], [(h, c)] per layer, each [B, D])`."""
        mask = source_ids != PAD_ID
        lengths = mask.sum(1).clamp(min=1).cpu()
        embedded = F.dropout(self.source_embedding(source_ids), self.dropout, self.training)
        packed = nn.utils.rnn.pack_padded_sequence(embedded, lengths, batch_first=True,
                                                   enforce_sorted=False)
        outputs, (h, c) = self.encoder(packed)
        memory, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True,
                                                     total_length=source_ids.shape[1])
        directions = 2 if self.bidirectional else 1
        batch = source_ids.shape[0]

        def join(state):  # [layers·dirs, B, H] → per layer [B, dirs·H], forward first
            state = state.view(self.encoder_layers, directions, batch, self.encoder_units)
            return [torch.cat(tuple(layer), -1) for layer in state]

        return memory, mask, list(zip(join(h), join(c), strict=True))

    # -- decoder ----------------------------------------------------------------------------
    def step(self, embedded, feed, states, memory, mask):
        """One decoder step → `(h̃_t, attention weights [B, S], next states)`."""
        inputs = torch.cat([embedded, feed], -1)
        next_states = []
        for index, cell in enumerate(self.cells):
            if index > 0:
                inputs = F.dropout(inputs, self.dropout, self.training)
            h, c = cell(inputs, states[index])
            next_states.append((h, c))
            inputs = h
        query = self.query_projection(inputs)
        scores = torch.bmm(memory, query.unsqueeze(2)).squeeze(2)
        scores = scores.masked_fill(~mask, -1e9)
        weights = torch.softmax(scores, -1)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)
        output = torch.tanh(self.attentional_projection(torch.cat([context, inputs], -1)))
        output = F.dropout(output, self.dropout, self.training)
        return output, weights, next_states

    def forward(self, source_ids, target_in):
        """Teacher forcing → logits `[B, T, vocab]`."""
        memory, mask, states = self.encode(source_ids)
        embedded = F.dropout(self.target_embedding(target_in), self.dropout, self.training)
        feed = memory.new_zeros(source_ids.shape[0], self.decoder_units)
        outputs = []
        for t in range(target_in.shape[1]):
            feed, _, states = self.step(embedded[:, t], feed, states, memory, mask)
            outputs.append(feed)
        return self.output_projection(torch.stack(outputs, 1))

    @torch.no_grad()
    def greedy_decode(self, source_ids, max_length_ratio=1.5):
        """Greedy ids `[B, L]` (0 after EOS), stopping when every row has emitted EOS; the
        length limit is the Keras translator's `int(S · ratio) + 10`."""
        memory, mask, states = self.encode(source_ids)
        batch = source_ids.shape[0]
        limit = int(source_ids.shape[1] * max_length_ratio) + 10
        tokens = torch.full((batch,), BOS_ID, dtype=torch.long)
        feed = memory.new_zeros(batch, self.decoder_units)
        finished = torch.zeros(batch, dtype=torch.bool)
        result = []
        for _ in range(limit):
            feed, _, states = self.step(self.target_embedding(tokens), feed, states, memory,
                                        mask)
            tokens = self.output_projection(feed).argmax(-1)
            tokens = tokens.masked_fill(finished, PAD_ID)
            result.append(tokens)
            finished |= tokens == EOS_ID
            if bool(finished.all()):
                break
        return torch.stack(result, 1)

    @torch.no_grad()
    def beam_decode(self, source_ids, beam_width=5, length_penalty=1.0, max_length_ratio=1.5):
        """The best beam-search hypothesis per sentence, ids `[B, L]` (0 after EOS), as
        `zoo.decoding.BeamSearch` ranks them: log P / ((5 + |Y|) / 6) ** α over the beam's
        `beam · vocab` candidates, padding and BOS never emitted, a finished hypothesis kept
        with its score frozen (its one continuation is padding at no cost) until better ones
        push it out; stops when every hypothesis has finished or at the length limit."""
        memory, mask, states = self.encode(source_ids)
        batch, beam = source_ids.shape[0], beam_width
        limit = int(source_ids.shape[1] * max_length_ratio) + 10

        def tile(x):  # [B, ...] → [B·K, ...], each row repeated K times
            return x.repeat_interleave(beam, 0)

        memory, mask = tile(memory), tile(mask)
        states = [(tile(h), tile(c)) for h, c in states]
        feed = memory.new_zeros(batch * beam, self.decoder_units)
        tokens = torch.full((batch * beam,), BOS_ID, dtype=torch.long)
        log_probs = torch.full((batch, beam), -1e9)
        log_probs[:, 0] = 0.0  # all hypotheses start as the same empty one
        finished = torch.zeros(batch, beam, dtype=torch.bool)
        lengths = torch.zeros(batch, beam, dtype=torch.long)
        ids = torch.zeros(batch, beam, 0, dtype=torch.long)
        offsets = (torch.arange(batch) * beam)[:, None]
        for _ in range(limit):
            feed, _, states = self.step(self.target_embedding(tokens), feed, states, memory,
                                        mask)
            logits = self.output_projection(feed)
            logits[:, PAD_ID] = -1e9
            logits[:, BOS_ID] = -1e9
            step = torch.log_softmax(logits, -1).view(batch, beam, -1)
            vocab = step.shape[-1]
            pad_only = torch.full((vocab,), -1e9)
            pad_only[PAD_ID] = 0.0
            step = torch.where(finished[..., None], pad_only, step)
            total = log_probs[..., None] + step
            new_lengths = lengths + (~finished).long()
            penalty = ((5.0 + new_lengths.float()) / 6.0) ** length_penalty
            candidates = (total / penalty[..., None]).view(batch, -1)
            _, best = candidates.topk(beam, -1)
            parents, next_tokens = best // vocab, best % vocab
            log_probs = total.view(batch, -1).gather(1, best)
            finished = finished.gather(1, parents) | (next_tokens == EOS_ID)
            lengths = new_lengths.gather(1, parents)
            ids = torch.cat([ids.gather(1, parents[..., None].expand(-1, -1, ids.shape[2])),
                             next_tokens[..., None]], -1)
            rows = (parents + offsets).view(-1)
            feed = feed[rows]
            states = [(h[rows], c[rows]) for h, c in states]
            tokens = next_tokens.view(-1)
            if bool(finished.all()):
                break
        return ids[:, 0]


# -- weights, both ways --------------------------------------------------------------------
def _keras_weights(keras_model):
    """`{path without the model name: variable}` of a Keras RNNTranslator."""
    return {w.path.split("/", 1)[1]: w for w in keras_model.weights}


def _lstm_pairs(model):
    """(keras prefix, torch module, torch suffix) for every LSTM of the twin."""
    pairs = []
    for layer in range(model.encoder_layers):
        if model.bidirectional:
            pairs.append((f"encoder/bilstm_{layer}/forward_lstm_{layer}/lstm_cell",
                          model.encoder, f"_l{layer}"))
            pairs.append((f"encoder/bilstm_{layer}/backward_lstm_{layer}/lstm_cell",
                          model.encoder, f"_l{layer}_reverse"))
        else:
            pairs.append((f"encoder/lstm_{layer}/lstm_cell", model.encoder, f"_l{layer}"))
    for index, cell in enumerate(model.cells):
        pairs.append((f"decoder/lstm_cell_{index}", cell, ""))
    return pairs


def _dense_pairs(model):
    return [("encoder/embedding/embeddings", model.source_embedding.weight, False),
            ("decoder/embedding/embeddings", model.target_embedding.weight, False),
            ("decoder/attention/query_projection/kernel", model.query_projection.weight, True),
            ("decoder/attentional_projection/kernel", model.attentional_projection.weight,
             True),
            ("decoder/output_projection/kernel", model.output_projection.weight, True),
            ("decoder/output_projection/bias", model.output_projection.bias, False)]


def port_keras_to_torch(keras_model, torch_model):
    """Copy a Keras `RNNTranslator`'s weights into `torch_model` (gate order i, f, c/g, o is
    the same in both; kernels are transposed)."""
    weights = _keras_weights(keras_model)
    expected = set(weights)
    used = set()

    def value(path):
        used.add(path)
        return torch.from_numpy(np.asarray(weights[path].numpy(), np.float32))

    with torch.no_grad():
        for prefix, module, suffix in _lstm_pairs(torch_model):
            getattr(module, f"weight_ih{suffix}").copy_(value(f"{prefix}/kernel").T)
            getattr(module, f"weight_hh{suffix}").copy_(value(f"{prefix}/recurrent_kernel").T)
            getattr(module, f"bias_ih{suffix}").copy_(value(f"{prefix}/bias"))
            getattr(module, f"bias_hh{suffix}").zero_()
        for path, parameter, transpose in _dense_pairs(torch_model):
            parameter.copy_(value(path).T if transpose else value(path))
    if used != expected:
        raise ValueError(f"Keras weights not ported: {sorted(expected - used)}")
    return torch_model


def keras_layout(torch_model, gradients=False):
    """`{Keras weight path: array}` of `torch_model`'s weights (or their gradients) in the
    Keras layout (`b_ih + b_hh` → the one bias)."""

    def array(parameter):
        tensor = parameter.grad if gradients else parameter
        if tensor is None:  # frozen b_hh: no gradient
            tensor = torch.zeros_like(parameter)
        return tensor.detach().cpu().numpy().astype(np.float32)

    arrays = {}
    for prefix, module, suffix in _lstm_pairs(torch_model):
        arrays[f"{prefix}/kernel"] = array(getattr(module, f"weight_ih{suffix}")).T
        arrays[f"{prefix}/recurrent_kernel"] = array(getattr(module, f"weight_hh{suffix}")).T
        bias = array(getattr(module, f"bias_ih{suffix}"))
        if not gradients:
            bias = bias + array(getattr(module, f"bias_hh{suffix}"))
        arrays[f"{prefix}/bias"] = bias
    for path, parameter, transpose in _dense_pairs(torch_model):
        arrays[path] = array(parameter).T if transpose else array(parameter)
    return arrays


def port_torch_to_keras(torch_model, keras_model):
    """Copy `torch_model`'s weights into a Keras `RNNTranslator` (`b_ih + b_hh` → bias)."""
    weights = _keras_weights(keras_model)
    arrays = keras_layout(torch_model)
    if set(arrays) != set(weights):
        raise ValueError(f"weights differ: {sorted(set(arrays) ^ set(weights))}")
    for path, array in arrays.items():
        if tuple(weights[path].shape) != array.shape:
            raise ValueError(f"{path}: Keras {tuple(weights[path].shape)} vs torch "
                             f"{array.shape}")
        weights[path].assign(array)
    return keras_model


def twin_of(keras_model):
    """A torch twin with `keras_model`'s sizes and weights."""
    model = TorchLuongTranslator(
        keras_model.vocab_size, keras_model.embedding_dim, keras_model.encoder_units,
        keras_model.encoder_layers, keras_model.bidirectional, keras_model.decoder_units,
        keras_model.dropout)
    return port_keras_to_torch(keras_model, model)


# -- training ------------------------------------------------------------------------------
def sequence_loss(logits, target_out, label_smoothing=0.1):
    """Label-smoothed cross-entropy averaged over non-padding tokens (torch's own smoothing,
    `(1-ε)·NLL + ε·mean_v(-log p_v)`: the same formula as `zoo.training.SmoothedSequenceLoss`)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                           target_out.reshape(-1), ignore_index=PAD_ID,
                           label_smoothing=label_smoothing)


def warmup_cosine(step, peak, warmup_steps, total_steps, final_fraction=0.05):
    """`zoo.training.schedules.WarmupCosineDecay` at optimizer step `step` (0-based)."""
    if step < warmup_steps:
        return peak * (step + 1.0) / max(warmup_steps, 1)
    span = max(total_steps - warmup_steps, 1.0)
    progress = min(max((step - warmup_steps) / span, 0.0), 1.0)
    return peak * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi
                                                                              * progress)))


class KerasStyleAdam(torch.optim.Optimizer):
    """Adam exactly as Keras 3 writes it: `θ -= lr·√(1-β₂ᵗ)/(1-β₁ᵗ) · m / (√v + ε)`.

    torch's Adam adds ε to the bias-corrected `√v̂`; Keras adds it to the raw `√v`, i.e. its
    ε is torch's `ε·√(1-β₂ᵗ)`. Only for exact step-for-step comparisons.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-7):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta_1, beta_2 = group["betas"]
            for parameter in group["params"]:
                if parameter.grad is None:
                    continue
                state = self.state[parameter]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(parameter)
                    state["v"] = torch.zeros_like(parameter)
                state["step"] += 1
                t = state["step"]
                m, v, grad = state["m"], state["v"], parameter.grad
                m.add_((grad - m) * (1 - beta_1))
                v.add_((grad * grad - v) * (1 - beta_2))
                alpha = group["lr"] * math.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
                parameter.sub_(m * alpha / (v.sqrt() + group["eps"]))


class Trainer:
    """The zoo's training step in torch: loss, Adam, global-norm clip, WarmupCosine."""

    def __init__(self, model, learning_rate=2e-3, warmup_steps=200, total_steps=1800,
                 final_lr_fraction=0.05, clip_norm=1.0, label_smoothing=0.1, adam="torch",
                 epsilon=None):
        self.model = model
        self.schedule = (learning_rate, warmup_steps, total_steps, final_lr_fraction)
        self.clip_norm = clip_norm
        self.label_smoothing = label_smoothing
        parameters = [p for p in model.parameters() if p.requires_grad]
        self.parameters = parameters
        if adam == "keras":
            self.optimizer = KerasStyleAdam(parameters, lr=learning_rate,
                                            eps=1e-7 if epsilon is None else epsilon)
        else:
            self.optimizer = torch.optim.Adam(parameters, lr=learning_rate,
                                              eps=1e-8 if epsilon is None else epsilon)
        self.iterations = 0

    def train_step(self, source_ids, target_in, target_out):
        """One update; returns `(loss, global gradient norm before clipping)`."""
        self.model.train()
        lr = warmup_cosine(self.iterations, *self.schedule)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        loss = sequence_loss(self.model(source_ids, target_in), target_out,
                             self.label_smoothing)
        loss.backward()
        if self.clip_norm:
            norm = nn.utils.clip_grad_norm_(self.parameters, self.clip_norm)
        else:
            norm = torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(p.grad) for p in self.parameters]))
        self.optimizer.step()
        self.iterations += 1
        return float(loss), float(norm)


@torch.no_grad()
def evaluate(model, batches, label_smoothing=0.1):
    """Token-weighted label-smoothed loss and plain NLL (perplexity = exp) over `batches`."""
    model.eval()
    smoothed = nll = tokens = 0.0
    for source, target_in, target_out in batches:
        logits = model(source, target_in)
        count = int((target_out != PAD_ID).sum())
        smoothed += float(sequence_loss(logits, target_out, label_smoothing)) * count
        nll += float(sequence_loss(logits, target_out, 0.0)) * count
        tokens += count
    return {"loss": smoothed / tokens, "nll": nll / tokens, "perplexity": math.exp(nll / tokens)}


# -- batches -------------------------------------------------------------------------------
def load_batches(path, split="train", limit=None):
    """`[(source_ids, target_in, target_out)]` int64 tensors from an `export_batches` file."""
    data = np.load(path)
    count = int(data[f"{split}_count"])
    if limit is not None:
        count = min(count, limit)
    return [tuple(torch.from_numpy(data[f"{split}_{key}_{i}"].astype(np.int64))
                  for key in ("source", "target_in", "target_out")) for i in range(count)]


def batch_meta(path):
    data = np.load(path)
    return json.loads(str(data["meta"]))


# -- commands --------------------------------------------------------------------------------
def train_throughput(model, batches, steps, warmup_batches=2, **trainer_kwargs):
    """Train `steps` steps on `batches` (cycled) → losses and target tokens/s (non-pad
    target tokens, the zoo's count), after `warmup_batches` untimed steps."""
    trainer = Trainer(model, **trainer_kwargs)
    for i in range(warmup_batches):
        trainer.train_step(*batches[i % len(batches)])
    losses, tokens = [], 0
    started = time.perf_counter()
    for i in range(steps):
        batch = batches[(warmup_batches + i) % len(batches)]
        losses.append(trainer.train_step(*batch)[0])
        tokens += int((batch[2] != PAD_ID).sum())
    seconds = time.perf_counter() - started
    return {"steps": steps, "seconds": seconds, "target_tokens_per_second": tokens / seconds,
            "seconds_per_step": seconds / steps, "losses": losses}


def _decode_all(model, sources, batch_size):
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    produced = 0
    for start in range(0, len(order), batch_size):
        chunk = [sources[i] for i in order[start:start + batch_size]]
        width = -(-max(len(s) for s in chunk) // 8) * 8  # the zoo pads to multiples of 8
        ids = torch.zeros(len(chunk), width, dtype=torch.long)
        for row, source in enumerate(chunk):
            ids[row, :len(source)] = torch.tensor(source)
        output = model.greedy_decode(ids)
        produced += int(((output != PAD_ID) & (output != EOS_ID)).sum())
    return produced


def decode_throughput(model, sources, batch_size, compiled=False, warmup=16):
    """Greedy-decode `sources` (lists of ids, EOS-terminated) at `batch_size`, batched by
    length like `zoo.tasks.sequence_outputs.batched_translate` → sentences/s, output tokens/s.
    An untimed pass over `warmup` sentences of every length bucket first (compilation)."""
    model.eval()
    if compiled:
        # The step is what repeats; compile it and keep Python's loop (dynamic lengths).
        model.step = torch.compile(model.step, dynamic=True)
    by_width = {}
    for source in sources:
        by_width.setdefault(-(-len(source) // 8), []).append(source)
    _decode_all(model, [s for group in by_width.values() for s in group[:warmup]],
                batch_size)
    started = time.perf_counter()
    produced = _decode_all(model, sources, batch_size)
    seconds = time.perf_counter() - started
    if compiled:
        del model.step  # back to the class's method
    return {"batch_size": batch_size, "compiled": compiled, "sentences": len(sources),
            "seconds": seconds, "sentences_per_second": len(sources) / seconds,
            "output_tokens_per_second": produced / seconds,
            "ms_per_sentence": 1000 * seconds / len(sources)}


def model_from_meta(meta, init_seed=0):
    return TorchLuongTranslator(meta["vocab_size"], meta["embedding_dim"],
                                meta["encoder_units"], meta["encoder_layers"],
                                meta["bidirectional"], meta["decoder_units"],
                                meta["dropout"]).init_uniform(0.1, init_seed)


def start_model(meta, keras_path=None, batches_path=None):
    """The anchor's uniform init, or the ported weights of a saved Keras translator (whose
    tokenizer must be the one the batches were made with)."""
    if keras_path is None:
        return model_from_meta(meta)
    import keras

    import zoo  # noqa: F401  (registers the zoo's classes for loading)

    keras_model = keras.saving.load_model(keras_path)
    proto = np.load(batches_path)["tokenizer"].tobytes()
    if keras_model.tokenizer is None or keras_model.tokenizer.model_proto != proto:
        raise ValueError(f"{keras_path}: its tokenizer is not the one {batches_path} was "
                         "exported with; re-export the batches with the same config")
    return twin_of(keras_model)


def check_equivalence(keras_model, batches, rtol=1e-4, gradient_batches=1):
    """Port `keras_model` to torch and compare, dropout off, on `batches`: logits (max |Δ|
    relative to max |logit|), the loss function on identical logits, and on the first
    `gradient_batches` batches the gradient of every weight (relative L2 error)."""
    import tensorflow as tf

    from zoo.losses import SmoothedSequenceLoss

    twin = twin_of(keras_model).eval()
    keras_loss = SmoothedSequenceLoss(0.1)
    report = {"keras_parameters": int(keras_model.count_params()),
              "torch_parameters": twin.count_params(), "batches": []}
    for index, (source, target_in, target_out) in enumerate(batches):
        inputs = {"source_ids": tf.constant(source.numpy(), tf.int32),
                  "target_in": tf.constant(target_in.numpy(), tf.int32)}
        y_true = tf.constant(target_out.numpy(), tf.int32)
        with tf.GradientTape() as tape:
            keras_logits = keras_model(inputs, training=False)
            loss_k = keras_loss(y_true, keras_logits)
        twin.zero_grad(set_to_none=True)
        torch_logits = twin(source, target_in)
        loss_t = sequence_loss(torch_logits, target_out)
        mask = (target_out != PAD_ID).numpy()
        delta = np.abs(keras_logits.numpy() - torch_logits.detach().numpy())
        scale = float(np.abs(keras_logits.numpy()).max())
        entry = {
            "shape": [*source.shape, target_in.shape[1]],
            "max_abs_logit": scale,
            "max_abs_logit_diff": float(delta.max()),
            "max_rel_logit_diff_real_tokens": float(delta[mask].max()) / scale,
            "loss_keras": float(loss_k), "loss_torch": float(loss_t),
            "loss_torch_fn_on_keras_logits": float(sequence_loss(
                torch.from_numpy(keras_logits.numpy()), target_out))}
        if index < gradient_batches:
            keras_grads = tape.gradient(loss_k, keras_model.trainable_weights)
            loss_t.backward()
            torch_grads = keras_layout(twin, gradients=True)
            errors = {}
            for weight, grad in zip(keras_model.trainable_weights, keras_grads, strict=True):
                path = weight.path.split("/", 1)[1]
                grad = np.asarray(tf.convert_to_tensor(grad))  # IndexedSlices → dense
                errors[path] = float(np.linalg.norm(torch_grads[path] - grad)
                                     / max(np.linalg.norm(grad), 1e-30))
            entry["max_rel_gradient_error"] = max(errors.values())
            entry["worst_gradient"] = max(errors, key=errors.get)
        report["batches"].append(entry)
    report["max_rel_logit_diff"] = max(b["max_rel_logit_diff_real_tokens"]
                                       for b in report["batches"])
    report["max_rel_gradient_error"] = max(b.get("max_rel_gradient_error", 0.0)
                                           for b in report["batches"])
    report["equal"] = (report["keras_parameters"] == report["torch_parameters"]
                       and report["max_rel_logit_diff"] <= rtol
                       and report["max_rel_gradient_error"] <= 100 * rtol)
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["check", "train", "decode"])
    parser.add_argument("--batches", default=None,
                        help="npz from benchmarks/export_batches.py (default: its default)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--compile", action="store_true", help="also torch.compile (decode)")
    parser.add_argument("--limit", type=int, default=0, help="decode: first N test sentences")
    parser.add_argument("--keras-model", default=None,
                        help="decode/train: start from this trained .keras translator's "
                             "weights (ported), e.g. runs/<id>/model.keras")
    parser.add_argument("--output", default=None, help="write the JSON result here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from export_batches import DEFAULT_PATH

    path = args.batches or DEFAULT_PATH
    meta = batch_meta(path)
    if args.command == "check":
        from export_batches import keras_model_for

        batches = load_batches(path, "valid", limit=2) + load_batches(path, "train", limit=2)
        keras_model = keras_model_for(path)
        result = {"keras_init": check_equivalence(keras_model, batches)}
        # Keras' own init gives near-zero logits; the anchor's ±0.1 init gives large ones.
        port_torch_to_keras(model_from_meta(meta, init_seed=1), keras_model)
        result["uniform_init"] = check_equivalence(keras_model, batches)
        result["equal"] = result["keras_init"]["equal"] and result["uniform_init"]["equal"]
    elif args.command == "train":
        model = start_model(meta, args.keras_model, path)
        result = train_throughput(model, load_batches(path, "train"), args.steps)
        result["losses"] = [round(x, 4) for x in result["losses"]]
    else:
        model = start_model(meta, args.keras_model, path)
        data = np.load(path)
        sources = [list(data[f"test_source_{i}"]) for i in range(int(data["test_count"]))]
        if args.limit:
            sources = sources[:args.limit]
        result = {"runs": [decode_throughput(model, sources, size, compiled)
                           for compiled in ([False, True] if args.compile else [False])
                           for size in (1, 32)]}
    result = {"command": args.command, "torch": torch.__version__,
              "threads": torch.get_num_threads(), **result}
    text = json.dumps(result, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
