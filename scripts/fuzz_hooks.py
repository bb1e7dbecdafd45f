"""Schemathesis hooks for scripts/fuzz_api.py: Stream credentials for the generated requests.

Loaded by `schemathesis run` (`hooks` in scripts/fuzz_api.toml); reads the test deployment's
key and secret from CALLBRIDGE_FUZZ_API_KEY / CALLBRIDGE_FUZZ_API_SECRET (set by fuzz_api.py).

Every request gets the `api_key` query parameter (`before_call`) and an HS256 token signed
with the secret in `Authorization` (the auth provider), unless it is a negative case that
mutated that very parameter: then the mutation is sent as generated, and the server must
refuse it. Which token:

- a server token (`{"server": true}`) when the body names its user (`user_id`, else `user.id`,
  a string), or when it is a negative case whose body carries `user_id` or `user`: those fields
  are read only for server tokens, so a case that mutates them must meet a server token to be
  refused (user tokens ignore them; openapi.yaml says so). A valid body naming no user gets a
  user token, since a server token would be refused for it (a rule that depends on the token);
- otherwise a user token for `alice` (role `user`, or `admin` for some cases; raw or with a
  `Bearer ` prefix), so the body itself is what the server judges.

`stream-auth-type: anonymous` (always a 401) is kept for one case in four and otherwise
replaced by `jwt`, so most requests get past authentication. Every choice is a function of the
case's content (CRC-32), never random or time-dependent, so a deterministic run sends the same
requests every time.
"""

import json
import os
import sys
import zlib

import schemathesis
from schemathesis.core import NotSet
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import negated_parameters

# schemathesis loads this file by path: its folder is not on the import path by itself.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hs256  # noqa: E402  (scripts/hs256.py)

API_KEY = os.environ["CALLBRIDGE_FUZZ_API_KEY"]
SECRET = os.environ["CALLBRIDGE_FUZZ_API_SECRET"].encode()


def sign(claims):
    return hs256.sign(claims, SECRET)


def fingerprint(case):
    """A stable number for the case's generated content: its body and query, not its path,
    which the stateful phase fills from responses (server-generated call ids, random). Not
    Python's hash(), salted per process, nor the repr of an absent body, which names its
    address."""
    body = None if isinstance(case.body, NotSet) else case.body
    query = {k: v for k, v in (case.query or {}).items() if k != "api_key"}
    content = [body, query]
    text = json.dumps(content, sort_keys=True, default=repr, ensure_ascii=True)
    return zlib.crc32(text.encode())


def wants_server_token(case):
    """Whether the case is one for a server token (see the module's docstring)."""
    body = case.body
    if not isinstance(body, dict) or ("user_id" not in body and "user" not in body):
        return False
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.BODY):
        return True  # the mutation may be in user_id / user: only a server token reads them
    # A valid body that names a user (user_id wins over user.id).
    user = body.get("user")
    if body.get("user_id") is not None:
        return isinstance(body["user_id"], str)
    return isinstance(user, dict) and isinstance(user.get("id"), str)


def token_for(case, n):
    if wants_server_token(case):
        return sign({"server": True})
    claims = {"user_id": "alice"}
    if n % 5 == 0:
        claims["role"] = "admin"
    token = sign(claims)
    return "Bearer " + token if n % 3 == 0 else token


@schemathesis.auth(refresh_interval=None, retry_on=[])
class StreamToken:
    """The `Authorization` header. Schemathesis skips it for cases that mutate that header."""

    def get(self, case, ctx):
        return True  # the token depends on the case: made in set()

    def set(self, case, data, ctx):
        token = token_for(case, fingerprint(case))
        case.headers = {**(case.headers or {}), "Authorization": token}


@schemathesis.hook
def before_call(context, case, kwargs):
    """`api_key`, and `stream-auth-type: jwt` for most cases, just before each request (every
    phase; schemathesis revalidates what this changes)."""
    negated = set(negated_parameters(case.meta))
    n = fingerprint(case)
    if ("api_key", ParameterLocation.QUERY) not in negated:
        case.query = {**(case.query or {}), "api_key": API_KEY}
    headers = case.headers or {}
    name = next((k for k in headers if k.lower() == "stream-auth-type"), None)
    if (
        name is not None
        and ("stream-auth-type", ParameterLocation.HEADER) not in negated
        and headers[name] == "anonymous"
        and n % 4 != 0
    ):
        case.headers = {**headers, name: "jwt"}
    # A body naming its user twice must name the same user: the server refuses two users, a
    # rule between two fields the schema cannot state. Valid cases that name two are made to
    # name one (negative ones are sent as generated).
    body = case.body
    negative_body = case.meta is not None and case.meta.is_negative_at(ParameterLocation.BODY)
    if not negative_body and isinstance(body, dict) and isinstance(body.get("user_id"), str):
        user = body.get("user")
        if isinstance(user, dict) and isinstance(user.get("id"), str):
            case.body = {**body, "user": {**user, "id": body["user_id"]}}
    # `max_duration_seconds` must be an integer literal (`60.0` is refused, as openapi.yaml
    # says), which JSON Schema cannot state: 60.0 is an integer to it. Valid cases send it as
    # one (negative ones are sent as generated).
    body = case.body
    options = body.get("options") if isinstance(body, dict) else None
    if not negative_body and isinstance(options, dict):
        value = options.get("max_duration_seconds")
        if isinstance(value, float) and value.is_integer():
            case.body = {**body, "options": {**options, "max_duration_seconds": int(value)}}
