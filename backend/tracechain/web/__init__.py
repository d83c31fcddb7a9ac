"""The consumer page: server-rendered HTML with everything inline, so no request leaves the server."""
