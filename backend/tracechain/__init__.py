"""tracechain: supply-chain events signed by the parties that performed them, custody on chain."""

__version__ = "0.1.0"
