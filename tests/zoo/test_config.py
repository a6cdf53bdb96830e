"""zoo.build / zoo.list_models: YAML merged over defaults, overrides, clear errors."""

import keras
import pytest

import zoo
from zoo.config import ConfigError, parse_assignment

TINY = {"vocab_size": 40, "embedding_dim": 8, "encoder_units": 4, "decoder_units": 8,
        "encoder_layers": 1}


def test_list_models_has_the_spine():
    assert "luong_translator" in zoo.list_models()


def test_build_returns_a_keras_model_with_yaml_values():
    config = zoo.resolve_config("luong_translator")
    assert config["attention"] == "luong_general"
    assert config["time_budget_minutes"] == 28.0  # from configs/luong_translator.yaml
    model = zoo.build("luong_translator", **TINY)
    assert isinstance(model, keras.Model)
    assert model.decoder.attention.registered_name == "luong_general"


def test_overrides_apply():
    model = zoo.build("luong_translator", **{**TINY, "bidirectional": False, "decoder_units": 4})
    assert model.bidirectional is False and model.decoder_units == 4


def test_unknown_key_names_the_key_and_the_allowed_keys():
    with pytest.raises(ConfigError) as error:
        zoo.build("luong_translator", atention="cosine")
    message = str(error.value)
    assert "'atention'" in message and "Did you mean: attention" in message
    assert "Allowed keys:" in message and "batch_size" in message


def test_wrong_type_is_rejected():
    with pytest.raises(ConfigError, match="'epochs' expects int"):
        zoo.build("luong_translator", epochs="many")


def test_unknown_model_lists_close_names():
    with pytest.raises(ValueError, match="Did you mean: luong_translator"):
        zoo.build("luong_translater")


def test_unknown_attention_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown attention 'nope'"):
        zoo.build("luong_translator", attention="nope")


def test_inconsistent_sizes_are_explained():
    with pytest.raises(ConfigError, match="decoder_units"):
        zoo.build("luong_translator", encoder_units=100)


def test_yaml_file_with_unknown_key_names_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: luong_translator\nbatch_sise: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown config key 'batch_sise'"):
        zoo.resolve_config(str(path))


def test_set_assignments_parse_as_yaml():
    assert parse_assignment("epochs=3") == ("epochs", 3)
    assert parse_assignment("attention=cosine") == ("attention", "cosine")
    assert parse_assignment("attention=null") == ("attention", None)
    with pytest.raises(ConfigError):
        parse_assignment("epochs")


def test_every_registered_model_has_its_yaml():
    """configs/<name>.yaml exists for each registered builder and names that builder, so
    `zoo train configs/<name>.yaml` and `zoo.build(name)` mean the same model."""
    from zoo.config import CONFIG_DIR, load_yaml

    missing, mismatched = [], []
    for name in zoo.list_models():
        path = CONFIG_DIR / f"{name}.yaml"
        if not path.exists():
            missing.append(name)
        elif load_yaml(path).get("model", name) != name:
            mismatched.append(name)
    assert not missing and not mismatched, (missing, mismatched)


def test_configuration_doc_is_generated_from_the_definitions():
    """docs/configuration.md is `python -m zoo.config_docs`'s output (`--check` in make lint)
    and names every key of every model."""
    from zoo import config_docs

    text = config_docs.DOC.read_text(encoding="utf-8")
    assert text == config_docs.render(), "stale: run `python -m zoo.config_docs`"
    assert config_docs.main(["--check"]) == 0
    for name in zoo.list_models():
        missing = [key for key in zoo.resolve_config(name) if f"| `{key}` |" not in text]
        assert missing == ["model", "task"], (name, missing)


def test_options_are_defined_once_and_overrides_name_shared_keys():
    from zoo import options
    from zoo.decoding import STRATEGIES
    from zoo.models import get_builder

    assert set(options.DECODINGS) == set(STRATEGIES.names())
    keys = [key for section in options.SECTIONS.values() for key in section]
    assert len(keys) == len(set(keys)), "a key is defined in two sections"
    for name in zoo.list_models():
        builder = get_builder(name)
        assert not set(builder.architecture()) & set(options.OPTIONS), name
        assert set(builder.overrides) <= set(options.options_for(builder.task)), name
    with pytest.raises(ValueError, match="does not take"):
        options.defaults("qa", {}, overrides={"label_smoothing": 0.1})
    with pytest.raises(ValueError, match="shared options"):
        options.defaults("qa", {"epochs": options.Option(1, "epochs")})


def test_resolved_configs_keep_their_keys_and_values():
    """The options refactor (issue 22) left every model's resolved config as it was: a few
    values that come from the shared definitions, a per-task override and a YAML file."""
    assert zoo.resolve_config("sentiment")["learning_rate"] == 1e-3
    assert zoo.resolve_config("summarizer")["label_smoothing"] == 0.0
    assert "label_smoothing" not in zoo.resolve_config("qa")
    assert zoo.resolve_config("qa")["clip_norm"] == 5.0
    assert zoo.resolve_config("summarizer_dialogsum")["word_vector_corpora"] == [
        "qa", "summarization", "mt"]
    translator = zoo.resolve_config("transformer_translator")
    assert (translator["n_best"], translator["max_decode_steps"], translator["best_by"],
            translator["strategy"]) == (1, 200, "val_loss", "default")
