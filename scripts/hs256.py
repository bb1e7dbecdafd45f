"""HS256 JSON Web Tokens, standard library only: how Stream's server SDKs sign user and server
tokens, and how 100ms management tokens are signed. Compact JSON (no spaces), the header
first. Shared by the scripts here and tests/events/generate.py.
"""

import base64
import hashlib
import hmac
import json

HEADER = {"alg": "HS256", "typ": "JWT"}


def b64url(data):
    """Base64url without padding, as JWTs encode their parts."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signature(signing_input, secret):
    """The HS256 signature (base64url) of "header.payload" with `secret` (str or bytes)."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return b64url(hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest())


def sign(claims, secret, header=None):
    """A compact JWT of `claims`, HS256 with `secret`; `header` replaces the standard one."""
    h = b64url(json.dumps(header or HEADER, separators=(",", ":")).encode())
    p = b64url(json.dumps(claims, separators=(",", ":")).encode())
    return f"{h}.{p}.{signature(f'{h}.{p}', secret)}"
