"""The size limits of the HTTP/1.1 framing layer (SPEC §5 "Limits"), in one place.

This module only names numbers; it must never grow logic. Sizes count bytes *without*
the CRLF that ends a line, except the header section, which counts every byte of its
field lines including their CRLFs (not the request line, not the final empty line).
Every limit is enforced while bytes are still arriving (RFC 9112 §2.3: a recipient
decides how much it is willing to buffer), so no head is ever buffered without bound.
"""
from __future__ import annotations

from typing import Final

KIB: Final = 1024

# Request line (RFC 9112 §3) longer than this -> 414 URI Too Long.
MAX_REQUEST_LINE: Final = 8 * KIB
# One field line (RFC 9112 §5) longer than this -> 431.
MAX_HEADER_LINE: Final = 8 * KIB
# All field lines of the head (or of a trailer section) together -> 431.
MAX_HEADER_SECTION: Final = 32 * KIB
# More field lines than this in one head (or trailer section) -> 431.
MAX_HEADER_FIELDS: Final = 100
# chunk-ext (RFC 9112 §7.1.1) longer than this -> 400.
MAX_CHUNK_EXTENSION: Final = 1 * KIB
# chunk-size hex digits (leading zeros included); 16 digits and a value below 2**63.
MAX_CHUNK_SIZE_DIGITS: Final = 16
MAX_CHUNK_SIZE: Final = 2**63 - 1
# Content-Length decimal digits (RFC 9110 §8.6 sets none; 18 digits fit in an int64).
MAX_CONTENT_LENGTH_DIGITS: Final = 18
# Informational (1xx) responses accepted before the final one (RFC 9110 §15.2).
MAX_INFORMATIONAL_RESPONSES: Final = 10

# Statuses the limits produce on requests (responses always produce 502).
STATUS_REQUEST_LINE_TOO_LONG: Final = 414
STATUS_HEADERS_TOO_LARGE: Final = 431
STATUS_BAD_REQUEST: Final = 400
