"""resfam's bundled variants in timm's model registry, as ``resfam_<variant>``.

``import resfam`` registers them (at once if timm is imported already, else as soon as timm is:
importing resfam does not import timm), so timm's own tools build them by name:

    >>> import resfam, timm
    >>> m = timm.create_model("resfam_iresnet50", num_classes=10, drop_path_rate=0.1)
    >>> f = timm.create_model("resfam_res2net50_26w_4s", features_only=True, out_indices=(2, 3, 4))

timm's arguments mean what they mean for timm's ResNet (``pretrained``, ``num_classes``,
``in_chans``, ``drop_rate``, ``drop_path_rate``, ``output_stride``, ``features_only``,
``out_indices``, ``zero_init_last``, ``global_pool='avg'``) and the rest of
:func:`resfam.build`'s keywords pass through; ``None`` means "the default", as timm's scripts
pass it. The models carry ``pretrained_cfg`` (timm's ``resolve_data_config`` reads it),
``feature_info``, ``group_matcher``, ``set_grad_checkpointing`` and ``reset_classifier``.

timm's scripts (``train.py``, ``validate.py``, ``benchmark.py``) import timm, not resfam; run
them through resfam so the names exist::

    python -m resfam.integrations.timm_registry train.py --model resfam_iresnet50 ...
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import runpy
import sys

PREFIX = "resfam_"
# create_model's own arguments, always passed to an entrypoint; resfam's pretrained_cfg comes
# from the weights it loads
TIMM_ONLY = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


def _entrypoint(variant: str):
    def create(pretrained=False, **kwargs):
        from ..errors import BuildArgumentError
        from ..factory import build

        kwargs = {k: v for k, v in kwargs.items() if v is not None and k not in TIMM_ONLY}
        pool = kwargs.pop("global_pool", "avg")
        if pool != "avg":
            raise BuildArgumentError(f"global_pool={pool!r} is not supported (resfam pools by "
                                     "average)", variant=variant, key="global_pool",
                                     hint="leave it out or pass 'avg'")
        return build(variant, pretrained=pretrained, **kwargs)

    create.__name__ = create.__qualname__ = PREFIX + variant
    create.__module__ = __name__
    create.__doc__ = f"resfam's {variant} (resfam.build({variant!r}, ...))"
    return create


def register() -> list[str]:
    """Register every bundled variant with timm (again: a re-registration replaces the entry
    quietly); returns the names."""
    import warnings

    from timm.models import register_model

    from ..spec.registry import list_models

    names = []
    for variant in list_models():
        fn = _entrypoint(variant)
        with warnings.catch_warnings():  # timm warns when a name is registered twice
            warnings.simplefilter("ignore")
            register_model(fn)
        names.append(fn.__name__)
    return names


class _RegisterAfterTimm(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path`` until timm is imported: it finds timm as the other finders
    would, and has timm's loader call :func:`register` once timm's own code has run."""

    def find_spec(self, name, path=None, target=None):
        if name != "timm":
            return None
        sys.meta_path.remove(self)  # once, and not for the look-up below
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                register()

            spec.loader.exec_module = exec_module
        return spec


def register_when_imported() -> None:
    """:func:`register` now if timm is imported, else when it is (``import resfam``)."""
    if "timm" in sys.modules:
        register()
    elif not any(isinstance(f, _RegisterAfterTimm) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterTimm())


def main(argv: list[str] | None = None) -> None:
    """Run a timm script (``train.py``, ``validate.py``, ``benchmark.py``) with resfam's
    variants registered: ``python -m resfam.integrations.timm_registry SCRIPT [ARGS...]``."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m resfam.integrations.timm_registry SCRIPT [ARGS...]  (a timm "
              "script, e.g. train.py, with the resfam_* models registered)")
        raise SystemExit(0 if argv else 2)
    register()  # as `import resfam` does; running a script must not depend on that

    sys.argv = list(argv)
    runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
