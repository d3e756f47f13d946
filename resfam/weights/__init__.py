"""The weights layer: checkpoints into resfam networks.

- :mod:`.convert`: other libraries' key layouts (timm, torchvision, official repositories) to
  resfam's (``convert_state_dict``);
- :mod:`.checkpoint`: local files read safely (``weights_only`` / safetensors) and loaded with
  every key and shape checked first (``load_pretrained``, ``load_state``, ``LoadReport``);
- :mod:`.hub`: published weights through timm's and torchvision's own caches.

It asks the spec layer which variants exist and what they reference; the spec layer never asks
it anything.
"""
