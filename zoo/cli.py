"""`zoo`: the command line of Attention Zoo.

    zoo list
    zoo train configs/luong_translator.yaml --set epochs=2 --set attention=cosine
    zoo train --resume <run id>
    zoo cluster-local 2 configs/luong_translator.yaml --set epochs=2
    zoo runs compare --experiment translation
    zoo ui
    zoo evaluate luong_translator --split test
    zoo export luong_translator --model-dir export/
    zoo serve export/ --port 8500
    zoo predict --server localhost:8500 --model luong_translator "Ein Mann fährt Fahrrad."
    zoo chat --server localhost:8500 --model responder --turns 3 --attention
    zoo demo
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out


def _cmd_list(args):
    import zoo

    print("models:     " + ", ".join(zoo.list_models()))
    print("attentions: " + ", ".join(zoo.attention.names()))
    return 0


def _cmd_train(args):
    from zoo.config import parse_assignment
    from zoo.training import train
    from zoo.training.callbacks import Stopped

    overrides = dict(parse_assignment(item) for item in args.set)
    if args.init_from:
        overrides["init_from"] = args.init_from
    if (args.config is None) == (args.resume is None):
        print("zoo train: error: give a config, or --resume RUN_ID (not both)", file=sys.stderr)
        return 2
    try:
        result = train(args.config, overrides, output_dir=args.output_dir,
                       verbose=1 if sys.stdout.isatty() else 2, resume=args.resume)
    except ValueError as error:
        if args.resume is None:
            raise
        print(f"zoo train: error: {error}", file=sys.stderr)
        return 2
    except Stopped as stop:  # the run is marked KILLED; the trainer said how to resume it
        return 128 + stop.signum  # as a shell reports a process a signal ended
    print(f"run {result.run_id}: " + ", ".join(
        f"{key} {value:.4g}" for key, value in result.metrics.items()))
    return 0


def _cmd_cluster_local(args):
    from zoo.training import local_cluster

    arguments = local_cluster.train_arguments(args.config, args.set, args.output_dir, args.resume)
    return local_cluster.run_local_cluster(args.workers, arguments, args.grace_seconds)


def _cmd_export(args):
    from export import export_model
    from zoo.config import parse_assignment
    from zoo.tasks.sequence_outputs import with_decoding
    from zoo.tracking.loading import load_trained

    model, source = load_trained(args.source)
    if args.set:
        with_decoding(model, dict(parse_assignment(item) for item in args.set))
    path = export_model(model, args.model_dir, name=args.name, jit_compile=not args.no_xla,
                        source=source, check_ops=args.check, quantize=args.quantize)
    print(f"exported {path}")
    if args.check:  # export_model raised (and published nothing) if the check failed
        from export.op_check import check_saved_model

        print(check_saved_model(path).summary())
    return 0


def _cmd_evaluate(args):
    from zoo.config import parse_assignment
    from zoo.evaluation import evaluate

    overrides = dict(parse_assignment(item) for item in args.set)
    scores, about = evaluate(args.source, split=args.split, limit=args.limit,
                             overrides=overrides, log=not args.no_log)
    where = about.get("export") or f"run {about['run_id']}"
    print(f"{about['model']} ({about['task']}, {where}), {about['split']} split, "
          f"{about['examples']} examples:")
    for name, value in scores.items():
        print(f"  {name:28s} {value:.2f}")
    if about.get("run_id") and not args.no_log:
        print(f"logged to MLflow run {about['run_id']}")
    return 0


def _cmd_runs_compare(args):
    from zoo import tracking

    tracking.configure()
    rows = tracking.sort_rows(tracking.compare_runs(args.experiment, max_runs=args.max_runs),
                              args.sort)
    if args.model:
        rows = [row for row in rows if row["model"] == args.model]
    print(f"experiment {args.experiment!r} in {tracking.tracking_uri()}: {len(rows)} runs")
    if rows:
        print(tracking.format_table(rows))
    return 0


def _cmd_ui(args):
    from zoo.tracking import ui

    return ui.run_ui(host=args.host, port=args.port)


def _cmd_serve(args):
    import logging

    import serving

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    serving.serve(**serving.server_kwargs(args))
    return 0


def _cmd_predict(args):
    """Reads the served `serving_default` signature (GetModelMetadata) and calls the matching
    client helper: the same command for a translator, summarizer, reader or classifier."""
    import serving

    client = serving.Client(args.server, timeout=args.timeout)
    signature = client.metadata(args.model, version=args.version)["signatures"].get(
        "serving_default")
    if signature is None:
        print(f"zoo predict: error: model {args.model!r} has no serving_default signature",
              file=sys.stderr)
        return 2
    inputs, outputs = set(signature["inputs"]), set(signature["outputs"])
    kwargs = {"version": args.version}
    if {"question", "context"} <= inputs:
        if args.context is None:
            print("zoo predict: error: a reader needs --context TEXT (the texts are the "
                  "questions)", file=sys.stderr)
            return 2
        answers = client.answer(args.model, args.texts, args.context, **kwargs)
        for question, answer in zip(args.texts, answers, strict=True):
            print(f"{question}\t{answer}")
    elif "label" in outputs:
        result = client.predict(args.model, {"text": args.texts}, **kwargs)
        for text, label, probabilities in zip(args.texts, result["label"],
                                              result["probabilities"], strict=True):
            print(f"{text}\t{label.decode('utf-8')}\t{float(max(probabilities)):.3f}")
    elif "response" in outputs:
        for history, response in zip(args.texts, client.respond(args.model, args.texts,
                                                                **kwargs), strict=True):
            print(f"{history}\t{response}")
    else:
        helper = client.summarize if "summary" in outputs else client.translate
        results = helper(args.model, args.texts, **kwargs)
        for source, output in zip(args.texts, results, strict=True):
            print(f"{source}\t{output}")
    return 0


USER_TAG, BOT_TAG = "#Person1#:", "#Person2#:"  # the user's turns, the responder's


def _cmd_chat(args):
    """A conversation with a served responder: each stdin line is a turn of `#Person1#`, the
    reply (`#Person2#`) is printed; the last `--turns` turns go with every request. An empty
    line or EOF ends it."""
    import serving
    from zoo.tasks.dialogue import turn_attention

    if args.turns < 1:
        print("zoo chat: error: --turns must be positive", file=sys.stderr)
        return 2
    history = []
    with serving.Client(args.server, timeout=args.timeout) as client:
        while True:
            if sys.stdin.isatty():
                print(f"{USER_TAG} ", end="", file=sys.stderr, flush=True)
            line = sys.stdin.readline()
            if not line.strip():
                return 0
            history.append(f"{USER_TAG} {line.strip()}")
            turns = history[-args.turns:]
            outputs = client.predict(args.model, {"text": ["\n".join(turns)]},
                                     version=args.version)
            reply = outputs["response"][0].decode("utf-8")
            history.append(f"{BOT_TAG} {reply}")
            print(f"{BOT_TAG} {reply}", flush=True)
            if args.attention:
                _print_turn_attention(turns, outputs, turn_attention)


def _print_turn_attention(turns, outputs, turn_attention):
    """The sent turns by the attention the reply paid them (summed over each turn's subwords,
    averaged over the reply's steps), most attended first."""
    tokens = [token.decode("utf-8") for token in outputs["history_tokens"][0]]
    steps = int(outputs["response_lengths"][0])
    shares = turn_attention(tokens, outputs["attention"][0][:steps])[-len(turns):]
    # the history's last len(shares) turns are in view (the first maybe cut at its start)
    visible = turns[len(turns) - len(shares):] if shares else []
    ranked = sorted(zip(shares, visible, strict=True), key=lambda pair: -pair[0])
    for share, turn in ranked:
        print(f"    attention {share:.2f}  {turn}", flush=True)


def _cmd_demo(args):
    from zoo.demo import run_demo

    return run_demo(minutes=args.minutes, port=args.port)


def build_parser():
    parser = argparse.ArgumentParser(prog="zoo", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("list", help="registered models and attention layers").set_defaults(
        func=_cmd_list)

    train = commands.add_parser("train", help="train a model, tracked in MLflow")
    train.add_argument("config", nargs="?", default=None,
                       help="configs/<model>.yaml or a registered model name")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key (repeatable)")
    train.add_argument("--output-dir", default="runs", help="checkpoints and trained models")
    train.add_argument("--resume", metavar="RUN_ID", default=None,
                       help="continue a killed or failed run from its last epoch checkpoint, in "
                            "the same MLflow run (no config then)")
    train.add_argument("--init-from", metavar="SOURCE", default=None,
                       help="fine-tune: start from a trained model's weights and tokenizer "
                            "(a registered name, models:/NAME/VERSION, runs:/RUN_ID, a run "
                            "directory or a .keras file); the config key init_from")
    train.set_defaults(func=_cmd_train)

    runs = commands.add_parser("runs", help="MLflow runs of the zoo")
    runs_commands = runs.add_subparsers(dest="runs_command", required=True)
    compare = runs_commands.add_parser("compare", help="table of an experiment's runs: model, "
                                                       "attention, BLEU, wall time, tokens/s")
    compare.add_argument("--experiment", default="translation", help="experiment (= task) name")
    compare.add_argument("--sort", choices=["bleu", "time", "tokens", "started"],
                         default="started", help="order of the rows (default: newest first)")
    compare.add_argument("--model", default=None, help="only this model's runs")
    compare.add_argument("--max-runs", type=int, default=200)
    compare.set_defaults(func=_cmd_runs_compare)

    ui = commands.add_parser("ui", help="the MLflow UI on the configured tracking store")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(func=_cmd_ui)

    export = commands.add_parser("export", help="export a SavedModel into a TF Serving repo")
    export.add_argument("source", help="model name (its newest run), run id, runs:/ or "
                                       "models:/ URI, .keras file or run directory")
    export.add_argument("--model-dir", default="export", help="model repository root")
    export.add_argument("--name", default=None, help="served model name (default: the model's)")
    export.add_argument("--no-xla", action="store_true", help="export without jit_compile")
    export.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="decode otherwise than the model's config says (decoding, "
                             "beam_width, length_penalty, n_best, ...)")
    export.add_argument("--quantize", choices=("int8",), default=None,
                        help="int8 weights (post-training, a scale per output channel)")
    export.add_argument("--check", action="store_true",
                        help="list the graph's ops; fail, publishing nothing, unless stock TF "
                             "Serving (2.20+: TF core + tf-text ops_lib) has them all")
    export.set_defaults(func=_cmd_export)

    evaluate = commands.add_parser("evaluate", help="task metrics of a run or an export on a "
                                                    "data split, logged to MLflow")
    evaluate.add_argument("source", help="run id, runs:/ or models:/ URI, model name (newest "
                                         "run), .keras file, run directory, or an export "
                                         "(export/<model>[/<version>])")
    evaluate.add_argument("--split", default="test", choices=["train", "valid", "test"])
    evaluate.add_argument("--limit", type=int, default=None, help="first N examples only")
    evaluate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                          help="override a data/decoding config key (e.g. decoding=beam)")
    evaluate.add_argument("--no-log", action="store_true", help="print only; log nothing")
    evaluate.set_defaults(func=_cmd_evaluate)

    import serving

    serve = serving.add_server_arguments(
        commands.add_parser("serve", help="serve a model repository over TF Serving's gRPC API"))
    serve.set_defaults(func=_cmd_serve)

    predict = commands.add_parser("predict", help="query a served model over gRPC (translate, "
                                                  "summarize, classify or answer, per its "
                                                  "signature)")
    predict.add_argument("texts", nargs="+", help="texts (a reader: the questions)")
    predict.add_argument("--context", default=None, help="a reader's context passage")
    predict.add_argument("--server", default="localhost:8500")
    predict.add_argument("--model", default="luong_translator")
    predict.add_argument("--version", type=int, default=None)
    predict.add_argument("--timeout", type=float, default=30.0)
    predict.set_defaults(func=_cmd_predict)

    chat = commands.add_parser("chat", help="talk to a served responder over gRPC: stdin "
                                            "lines are your turns, the replies are printed")
    chat.add_argument("--server", default="localhost:8500")
    chat.add_argument("--model", default="responder")
    chat.add_argument("--turns", type=int, default=3,
                      help="the last K turns sent with each request (its history_turns)")
    chat.add_argument("--attention", action="store_true",
                      help="after each reply, the turns it attended to, most first")
    chat.add_argument("--version", type=int, default=None)
    chat.add_argument("--timeout", type=float, default=60.0)
    chat.set_defaults(func=_cmd_chat)

    cluster = commands.add_parser(
        "cluster-local", help="N strategy=multi_worker training processes on 127.0.0.1 (free "
                              "ports, one TF_CONFIG each; worker 0 is the chief)")
    cluster.add_argument("workers", type=int, help="number of worker processes")
    cluster.add_argument("config", nargs="?", default=None,
                         help="configs/<model>.yaml or a registered model name")
    cluster.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                         help="override a config key (repeatable)")
    cluster.add_argument("--output-dir", default="runs", help="the chief's run directories")
    cluster.add_argument("--resume", metavar="RUN_ID", default=None,
                         help="continue a failed multi-worker run on N workers (no config)")
    cluster.add_argument("--grace-seconds", type=float, default=60.0,
                         help="after a worker fails, how long the others may take to stop")
    cluster.set_defaults(func=_cmd_cluster_local)

    demo = commands.add_parser("demo", help="train, export, serve and translate over gRPC")
    demo.add_argument("--minutes", type=float, default=4.0, help="training time budget")
    demo.add_argument("--port", type=int, default=0, help="gRPC port (0: a free one)")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        from zoo.config import ConfigError
        from zoo.data import DataDirError, DataError

        if args.command == "train":  # a lost worker: the message says what to resume
            from zoo.training.distribution import DistributionError

            if isinstance(error, DistributionError):
                print(f"zoo train: error: {error}", file=sys.stderr)
                return 1
        if isinstance(error, (ConfigError, DataError, DataDirError)) or args.command in (
                "export", "predict", "chat", "runs", "ui", "evaluate", "cluster-local"):
            print(f"zoo {args.command}: error: {error}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
