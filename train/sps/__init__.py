"""SPS training, laid out like :mod:`train.v3`: ``config`` (settings, named recipes), ``data``
(notes, batches), ``model`` (networks), ``loss`` (the module the trainer optimises), ``export``
(ONNX wrappers), ``method`` (the entry point: build_task, load_latent_model, the LatentModel)."""
