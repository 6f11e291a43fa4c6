"""githost: a self-hosted Git server (Smart HTTP, GitHub-shaped REST API, WebSocket events)."""

__version__ = "0.1.0"
