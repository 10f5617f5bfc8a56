"""The module path of the pyfunc in models registered before the package was grouped (issue 27).

Such a model stores its own copy of `pyfunc_code.py`, which MLflow runs at load time and which
does `from ssda_assets.pyfunc_model import SSDAPyfunc`. In a process that has already imported the
installed `ssda_assets` (the platform, `ssda predict`, a notebook) that import resolves here, not
in the code copy stored with the model, so this path stays importable for as long as such models
may be loaded. New models name `ssda_assets.registry.pyfunc`; nothing in the package imports this.
"""

from ssda_assets.registry.pyfunc import SSDAPyfunc, pyfunc_signature, score_frame

__all__ = ["SSDAPyfunc", "pyfunc_signature", "score_frame"]
