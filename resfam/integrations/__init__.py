"""Adapters for detection code bases. Import the one you use; resfam itself never requires them:

- ``resfam.integrations.mmdet``: ``ResFamBackbone`` in mmengine's / mmdet's MODELS registry
  (``custom_imports = dict(imports=["resfam.integrations.mmdet"])`` in a config).
- ``resfam.integrations.detectron2``: a detectron2 ``Backbone`` registered in BACKBONE_REGISTRY
  as ``build_resfam_backbone``.
"""
