"""`zoo evaluate` on a trained run and on its export: the same metrics, logged to MLflow."""

import mlflow
import pytest

from zoo import cli
from zoo.evaluation import evaluate, export_version_dir


def test_evaluate_run_and_export_agree_and_log(trained_translator, tmp_path, capsys):
    result = trained_translator
    # The export decodes as the model's config says; score the run greedily, as the tiny
    # config does (the translator YAMLs say beam), to compare like with like.
    scores, about = evaluate(result.run_id, split="test", limit=40,
                             overrides={"decoding": "greedy"})
    assert about["run_id"] == result.run_id and about["examples"] == 40
    assert set(scores) >= {"test_bleu", "test_chrf"}
    logged = mlflow.MlflowClient().get_run(result.run_id).data.metrics
    assert logged["test_bleu"] == pytest.approx(scores["test_bleu"])

    from export import export_model

    version_dir = export_model(result.model, tmp_path / "export", warmup_lengths=(),
                               source={"run_id": result.run_id})
    assert export_version_dir(tmp_path / "export" / result.model.name) == version_dir
    served, served_about = evaluate(tmp_path / "export" / result.model.name, limit=40)
    # Greedy decoding in the Keras model and in the SavedModel: the same translations.
    assert scores["test_chrf"] > 0  # a real score to compare, not two zeros
    assert served["test_bleu"] == pytest.approx(scores["test_bleu"], abs=0.01)
    assert served["test_chrf"] == pytest.approx(scores["test_chrf"], abs=0.01)
    run = mlflow.MlflowClient().get_run(served_about["run_id"])
    assert run.data.tags["zoo.evaluated_export"] == str(version_dir.resolve())

    assert cli.main(["evaluate", str(version_dir), "--limit", "8", "--no-log"]) == 0
    assert "test_bleu" in capsys.readouterr().out


def test_validation_uses_val_decoding_and_the_test_split_decoding(trained_translator):
    from zoo.tasks import get_task

    result = trained_translator
    task = get_task("translation")
    config = result.config | {"decoding": "beam", "val_decoding": "greedy", "beam_width": 3,
                              "val_bleu_limit": 4}
    examples = task.read_split(config | {"eval_limit": 4}, "valid")
    model, before = result.model, (result.model.decoding, result.model.beam_width)
    try:
        task.evaluate_during_training(model, config, examples)
        assert model.decoding == "greedy"
        task.evaluate(model, config, examples)
        assert (model.decoding, model.beam_width) == ("beam", 3)
    finally:  # the fixture is shared
        model.decoding, model.beam_width = before


def test_evaluate_errors(tracking_dir, capsys):
    assert cli.main(["evaluate", "no_such_model_anywhere"]) == 2
    assert "no trained model" in capsys.readouterr().err
    with pytest.raises(ValueError, match="split"):
        evaluate("x", split="dev")
