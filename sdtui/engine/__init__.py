"""The generation engine: prompt conditioning, denoising, decoding."""
