"""Everything that imports aiohttp.web."""
