"""The L7 (HTTP/1.1) data path: `exchange` is the sans-IO machine, `protocol` the asyncio glue."""
