"""Training sdtui's embedded default model: the shapes dataset, the small SD1 model, the two
training stages (VAE, then UNet + text encoder) and the export to a single-file checkpoint.
`tools/train_default_model.py` is the command line over these modules."""
