"""Data on the host: labelled image sets (``datasets``), noise and image sets for denoisers (``denoising``),
digit canvases, a model's own inputs (``model_data``) and input normalization (``preprocessing``)."""
