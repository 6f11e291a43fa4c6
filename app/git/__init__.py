"""The git layer: the only code that starts processes. It never imports aiohttp."""
