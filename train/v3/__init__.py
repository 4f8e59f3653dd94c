"""V3 training, laid out like :mod:`train.sps`: ``config`` (settings, named recipes), ``data``
(notes, batches), ``model`` (networks), ``loss`` (the module the trainer optimises), ``export``
(ONNX wrappers), ``method`` (the entry point: build_task, load_latent_model, the LatentModel)."""
