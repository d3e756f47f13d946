"""The spec layer: what a network *is*, as validated data.

- :mod:`.loading`: spec files read safely (bounded size and nesting, YAML's safe loader).
- :mod:`.schema`: the spec schema (pydantic) composed from each primitive's parameter model,
  and :class:`Spec`, a resolved, validated variant.
- :mod:`.registry`: the bundled specs, ``extends:`` resolution, look-up by name, path or mapping.
- :mod:`.build_args`: the arguments a build takes beside its spec, validated the same way.
- :mod:`.reference`: docs/specs.md, generated from the schema.

It imports the primitives (for their parameter schemas) and nothing above them.
"""
from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {  # the schema imports the primitives, and torch
    "SpecRef": ".registry", "get_spec": ".registry", "list_families": ".registry",
    "list_models": ".registry", "Spec": ".schema"})

__all__ = ["Spec", "SpecRef", "get_spec", "list_families", "list_models"]
