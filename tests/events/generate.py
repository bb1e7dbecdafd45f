#!/usr/bin/env python3
"""Writes the API Gateway v2 (HTTP API, payload 2.0) event fixtures in this folder.

Every token is signed with the fixture credentials below (also in tests/sam-env.json and
tests/support/lib.rs), with the standard library only, so the fixtures can be regenerated
without the Rust code under test.
Run: python3 tests/events/generate.py
"""
import base64, json, os, sys, urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import hs256  # noqa: E402  (scripts/hs256.py, standard library only)

API_KEY = "callbridge-fixture-key"
SECRET = b"callbridge-fixture-secret"
HERE = os.path.dirname(os.path.abspath(__file__))


def jwt(claims, secret=SECRET, header=None):
    return hs256.sign(claims, secret, header)


ALICE = jwt({"user_id": "alice"})
BOB = jwt({"user_id": "bob", "role": "admin"})
GUEST = jwt({"user_id": "gus", "role": "guest"})
SERVER = jwt({"server": True})
EXPIRED = jwt({"user_id": "alice", "exp": 1500000000})
NOT_YET = jwt({"user_id": "alice", "nbf": 4102444800})
FUTURE_IAT = jwt({"user_id": "alice", "iat": 4102444800})
WRONG_SECRET = jwt({"user_id": "alice"}, secret=b"someone-elses-secret")
ALG_NONE = jwt({"user_id": "alice"}, header={"alg": "none", "typ": "JWT"}).rsplit(".", 1)[0] + "."


def event(route, raw_path, path_params, body=None, token=ALICE, api_key=API_KEY,
          b64=False, extra_headers=None, method="POST", raw_query=None):
    query = {"api_key": api_key} if api_key is not None else {}
    query["user_id"] = "alice"
    query["connection_id"] = "c0ffee"
    headers = {
        "accept": "application/json",
        "content-type": "application/json",
        "host": "abc123.execute-api.us-east-1.amazonaws.com",
        "stream-auth-type": "jwt",
        "user-agent": "stream-chat-javascript-client-browser-8.40.0",
        "x-stream-client": "stream-chat-javascript-client-browser-8.40.0",
    }
    if token is not None:
        headers["authorization"] = token
    headers.update(extra_headers or {})
    ev = {
        "version": "2.0",
        "routeKey": f"POST {route}",
        "rawPath": raw_path,
        # API Gateway passes the query string through as the client sent it (quotes, angle
        # brackets, spaces and all), so raw_query may be anything.
        "rawQueryString": raw_query if raw_query is not None else urllib.parse.urlencode(query),
        "headers": headers,
        "queryStringParameters": query,
        "pathParameters": path_params,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.10", "userAgent": headers["user-agent"]},
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": f"POST {route}",
            "stage": "$default",
            "time": "28/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795860000000,
        },
        "isBase64Encoded": b64,
    }
    if body is not None:
        ev["body"] = base64.b64encode(body).decode() if b64 else body
    return ev


CREATE = "/channels/{type}/{id}/call"
TOKEN = "/calls/{id}"
END = "/calls/{id}/end"


def create(body, **kw):
    return event(CREATE, "/channels/messaging/general/call", {"type": "messaging", "id": "general"}, body, **kw)


def get_token(call_id="standup", body="{}", **kw):
    return event(TOKEN, f"/calls/{urllib.parse.quote(call_id, safe='')}", {"id": urllib.parse.quote(call_id, safe="")}, body, **kw)


def end_call(call_id="standup", body='{"reason":"standup is over"}', **kw):
    quoted = urllib.parse.quote(call_id, safe="")
    return event(END, f"/calls/{quoted}/end", {"id": quoted}, body, **kw)


FIXTURES = {
    # Create Call
    "create-call": create('{"id":"Standup","type":"video","options":{}}'),
    "create-call-audio": create('{"id":"call-messaging:general","type":"audio"}', token=BOB),
    "create-call-no-id": create('{"type":"video"}'),
    "create-call-server-token": create('{"id":"standup","type":"video","user_id":"carol"}', token=SERVER),
    "create-call-base64-body": create(b'{"id":"standup","type":"video"}', b64=True),
    "create-call-bad-type": create('{"id":"standup","type":"screen"}'),
    "create-call-missing-type": create('{"id":"standup"}'),
    "create-call-bad-id": create('{"id":"stand up!","type":"video"}'),
    "create-call-long-id": create(json.dumps({"id": "x" * 65, "type": "video"})),
    "create-call-id-not-string": create('{"id":42,"type":"video"}'),
    "create-call-malformed-json": create('{"id":"standup","type":'),
    "create-call-not-object": create('["standup","video"]'),
    "create-call-empty-body": create(None),
    "create-call-non-utf8": create(b'{"id":"st\xff\xfeup","type":"video"}', b64=True),
    "create-call-server-no-user": create('{"id":"standup","type":"video"}', token=SERVER),
    "create-call-no-token": create('{"id":"standup","type":"video"}', token=None),
    "create-call-garbled-token": create('{"id":"standup","type":"video"}', token="not-a-jwt"),
    "create-call-anonymous": create('{"id":"standup","type":"video"}', token=None,
                                    extra_headers={"stream-auth-type": "anonymous"}),
    "create-call-no-api-key": create('{"id":"standup","type":"video"}', api_key=None),
    "create-call-wrong-api-key": create('{"id":"standup","type":"video"}', api_key="someone-elses-key"),
    "create-call-expired-token": create('{"id":"standup","type":"video"}', token=EXPIRED),
    "create-call-token-not-yet-valid": create('{"id":"standup","type":"video"}', token=NOT_YET),
    "create-call-token-issued-in-future": create('{"id":"standup","type":"video"}', token=FUTURE_IAT),
    "create-call-bad-signature": create('{"id":"standup","type":"video"}', token=WRONG_SECRET),
    "create-call-alg-none": create('{"id":"standup","type":"video"}', token=ALG_NONE),
    "create-call-forbidden-role": create('{"id":"standup","type":"video"}', token=GUEST),
    "create-call-odd-api-key": create('{"id":"standup","type":"video"}',
                                      raw_query='api_key="<x y>"&user_id=alice'),
    "create-call-bad-channel": event(CREATE, "/channels/messaging/gen%20eral/call",
                                     {"type": "messaging", "id": "gen%20eral"}, '{"id":"standup","type":"video"}'),
    # Get Call Token
    "get-call-token": get_token(),
    "get-call-token-no-body": get_token(body=None),
    "get-call-token-android": get_token(body='{"callId":"standup","extra":true}'),
    "get-call-token-server-token": get_token(body='{"user_id":"carol"}', token=SERVER),
    "get-call-token-odd-query": get_token(raw_query=urllib.parse.urlencode({"api_key": API_KEY})
                                          + '&user_id=alice&note="<a b>"|`{^}'),
    "get-call-token-encoded-id": get_token("call-messaging:general"),
    "get-call-token-unknown": get_token("no-such-call"),
    "get-call-token-bad-id": get_token("bad id"),
    "get-call-token-not-object": get_token(body="42"),
    "get-call-token-forbidden-role": get_token(token=GUEST),
    "get-call-token-expired-token": get_token(token=EXPIRED),
    # End Call
    "end-call": end_call(),
    "end-call-no-body": end_call(body=None),
    "end-call-admin": end_call(body="{}", token=BOB),
    "end-call-server-token": end_call(body='{"user_id":"carol","reason":null}', token=SERVER),
    "end-call-unknown": end_call("no-such-call"),
    "end-call-forbidden-role": end_call(token=GUEST),
    "end-call-reason-too-long": end_call(body=json.dumps({"reason": "r" * 256})),
    "end-call-reason-not-string": end_call(body='{"reason":["over"]}'),
    "end-call-bad-id": end_call("bad id"),
    "end-call-expired-token": end_call(token=EXPIRED),
}

if __name__ == "__main__":
    for name, ev in FIXTURES.items():
        with open(os.path.join(HERE, f"{name}.json"), "w") as f:
            json.dump(ev, f, indent=2)
            f.write("\n")
    print(f"wrote {len(FIXTURES)} fixtures")
