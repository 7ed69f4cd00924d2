"""Training: the fit loop and its configuration (``train``), saved models in both Kerases (``model_io``), the
``tf.distribute`` strategy (``distribute``) and local clusters of workers (``cluster``)."""
