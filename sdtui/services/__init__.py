"""Services over the engine: job queue, outputs, settings."""
