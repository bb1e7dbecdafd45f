// The kit (clients/js) with stream-chat 8.61.0 and the pinned 9.x, against the real local
// server binary.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  KEY, SECRET, ROOT, streamChat, startCallbridge, startFakeStream, startPlainServer, closedPort,
  sign, now, agoraUid, connectedClient, requireKit,
} from './support.mjs';
import zlib from 'node:zlib';

// An Agora "007" token: "007" + base64 of a zlib stream (Callbridge writes its payload in a
// stored block, so the stream starts 78 01, not 78 9c: see the README), which Node's own zlib
// inflates into the payload.
function assertAgoraToken(token) {
  assert.match(token, /^007[A-Za-z0-9+/]+=*$/);
  const payload = zlib.inflateSync(Buffer.from(token.slice(3), 'base64'));
  assert.ok(payload.length > 100, `payload of ${payload.length} bytes`);
}

const { callbridge, restoreCallMethods } = requireKit(`${ROOT}/clients/js`);
const AGORA_APP_ID = '00000000000000000000000000000000';

/** The kit's promise rejects; returns what it rejected with. */
async function failure(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail('expected the request to fail');
}

/** An error answer of Callbridge, surfaced as the SDK's error with Stream's fields. */
function assertStreamError(err, status, code, fragment) {
  assert.ok(err instanceof Error, `an Error: ${err}`);
  assert.equal(err.code, code, err.message);
  assert.equal(err.StatusCode, status, err.message);
  assert.equal(err.status, status, err.message);
  assert.match(err.message, new RegExp(`^StreamChat error code ${code}: `), err.message);
  if (fragment) assert.ok(err.message.includes(fragment), `${err.message} should mention ${fragment}`);
}

for (const major of [8, 9]) {
  const { StreamChat, version } = streamChat(major);

  describe(`stream-chat ${version}`, { timeout: 60000 }, () => {
    let cb; // the sandbox server
    let stream; // the stand-in for Stream Chat
    const clients = [];
    const connect = async (user, token = sign({ user_id: user })) => {
      const client = await connectedClient(StreamChat, stream, user, token);
      clients.push(client);
      return client;
    };
    const callId = `Standup-${major}`;

    before(async () => {
      cb = await startCallbridge();
      stream = await startFakeStream(cb.base);
    });
    after(async () => {
      for (const c of clients) await c.disconnectUser();
      await stream.close();
      await cb.stop();
    });

    it('creates a call in a channel, as a connected user', async () => {
      const alice = await connect('alice');
      const calls = callbridge(alice, `${cb.base}/`);
      assert.equal(calls.baseURL, cb.base);
      const res = await calls.createCall(alice.channel('messaging', 'general'), { id: callId, type: 'video' });
      const { created_at: createdAt, ...call } = res.call;
      assert.deepEqual(call, {
        id: callId.toLowerCase(),
        provider: 'agora',
        type: 'video',
        agora: { channel: callId.toLowerCase() },
        hms: { room_id: '', room_name: '' },
        state: 'active',
        created_by: 'alice',
        ended_at: null,
        ended_by: null,
        ended_reason: null,
        session: {
          state: 'idle',
          started_at: null,
          ended_at: null,
          duration_seconds: null,
          participants: 0,
          max_participants: 0,
          sessions: 0,
        },
      });
      assert.match(createdAt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
      assertAgoraToken(res.token);
      assert.equal(res.agora_uid, agoraUid('alice'));
      assert.equal(res.agora_app_id, AGORA_APP_ID);
      assert.match(res.duration, /^\d+(\.\d+)?ms$/);
    });

    it('answers the same call for the same id in another letter case, by cid', async () => {
      const alice = await connect('alice');
      const calls = callbridge(alice, cb.base);
      const first = await calls.createCall('messaging:general', { id: callId, type: 'video' });
      const again = await calls.createCall('messaging:general', { id: callId.toUpperCase(), type: 'audio' });
      assert.deepEqual(again.call, first.call);
      assert.equal(again.call.type, 'video', 'the existing call wins');
    });

    it('gets a token for a call by id, for another member', async () => {
      const bob = await connect('bob');
      const res = await callbridge(bob, cb.base).getCallToken(callId.toLowerCase());
      assertAgoraToken(res.token);
      assert.equal(res.agora_uid, agoraUid('bob'));
      assert.equal(res.agora_app_id, AGORA_APP_ID);
      assert.equal(res.call, undefined);
    });

    it('acts for a user from a server-side client', async () => {
      const server = new StreamChat(KEY, SECRET);
      const calls = callbridge(server, cb.base);
      const id = `server-side-${major}`;
      const created = await calls.createCall(server.channel('messaging', 'general'), { id, type: 'audio', user_id: 'carol' });
      assert.equal(created.call.type, 'audio');
      assert.equal(created.agora_uid, agoraUid('carol'));
      const token = await calls.getCallToken(id, { user_id: 'dave' });
      assert.equal(token.agora_uid, agoraUid('dave'));
    });

    it('ends a call: the creator; then tokens are refused and a repeat answers the same end', async () => {
      const alice = await connect('alice');
      const bob = await connect('bob');
      const id = `End-Me-${major}`;
      const created = await callbridge(alice, cb.base).createCall('messaging:general', { id, type: 'video' });
      assert.equal(created.call.state, 'active');
      assertStreamError(await failure(callbridge(bob, cb.base).endCall(id)), 403, 17, 'end-call');
      const ended = await callbridge(alice, cb.base).endCall(id, { reason: 'Meeting over' });
      assert.equal(ended.call.id, id.toLowerCase());
      assert.equal(ended.call.state, 'ended');
      assert.equal(ended.call.created_at, created.call.created_at);
      assert.equal(ended.call.ended_by, 'alice');
      assert.equal(ended.call.ended_reason, 'Meeting over');
      assert.match(ended.call.ended_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
      // The sandbox has no Agora RESTful API credentials: tokens already issued stay valid.
      assert.equal(ended.participants_removed, false);
      assert.ok(Date.parse(ended.tokens_valid_until) > Date.now(), ended.tokens_valid_until);
      assert.match(ended.note, /AGORA_CUSTOMER_ID/);
      assert.match(ended.duration, /^\d+(\.\d+)?ms$/);
      assertStreamError(await failure(callbridge(bob, cb.base).getCallToken(id)), 404, 16, 'has ended');
      const again = await callbridge(alice, cb.base).endCall(id.toLowerCase());
      assert.deepEqual(again.call, ended.call);
    });

    it('ends a call for a user from a server-side client', async () => {
      const server = new StreamChat(KEY, SECRET);
      const calls = callbridge(server, cb.base);
      const id = `server-end-${major}`;
      await calls.createCall('messaging:general', { id, type: 'video', user_id: 'carol' });
      const ended = await calls.endCall(id, { user_id: 'dave' });
      assert.equal(ended.call.ended_by, 'dave');
      assert.equal(ended.call.ended_reason, null);
      assertStreamError(await failure(calls.endCall(id)), 400, 4, 'must name the user');
    });

    it('refreshes an expired token through the token provider and retries', async () => {
      let handedOut = 0;
      const provider = async () => {
        handedOut += 1;
        return handedOut === 1
          ? sign({ user_id: 'erin', exp: now() - 60 })
          : sign({ user_id: 'erin', exp: now() + 600 });
      };
      const erin = await connect('erin', provider);
      assert.equal(handedOut, 1);
      const res = await callbridge(erin, cb.base).getCallToken(callId);
      assert.equal(res.agora_uid, agoraUid('erin'));
      assert.equal(handedOut, 2, 'the provider was asked again after code 40');
    });

    describe('errors', () => {
      it('400 code 4: a bad call type, a bad id', async () => {
        const calls = callbridge(await connect('alice'), cb.base);
        assertStreamError(await failure(calls.createCall('messaging:general', { id: 'x', type: 'screen' })), 400, 4, 'type must be video or audio');
        assertStreamError(await failure(calls.createCall('messaging:general', { id: 'no spaces', type: 'video' })), 400, 4, 'CreateCall failed');
      });

      it('401 code 5: no credentials (anonymous user)', async () => {
        const anon = new StreamChat(KEY, { baseURL: stream.base, allowServerSideConnect: true });
        await anon.connectAnonymousUser();
        clients.push(anon);
        assertStreamError(await failure(callbridge(anon, cb.base).getCallToken(callId)), 401, 5, 'GetCallToken failed');
      });

      it('401 code 2: a wrong api_key', async () => {
        const server = new StreamChat('not-the-key', SECRET);
        assertStreamError(await failure(callbridge(server, cb.base).getCallToken(callId, { user_id: 'a' })), 401, 2);
      });

      it('401 codes 40, 41, 42, 43: expired, not yet valid, issued in the future, bad signature', async () => {
        const cases = [
          [40, { user_id: 'frank', exp: now() - 60 }, SECRET],
          [41, { user_id: 'frank', nbf: now() + 600 }, SECRET],
          [42, { user_id: 'frank', iat: now() + 600 }, SECRET],
          [43, { user_id: 'frank' }, 'another-secret'],
        ];
        for (const [code, claims, secret] of cases) {
          // A static token (no provider): the SDK has nothing to refresh, the error surfaces.
          const frank = await connect('frank', sign(claims, secret));
          assertStreamError(await failure(callbridge(frank, cb.base).getCallToken(callId)), 401, code);
          assertStreamError(await failure(callbridge(frank, cb.base).createCall('messaging:general', { id: callId, type: 'video' })), 401, code);
          await frank.disconnectUser();
        }
      });

      it('403 code 17: an id used in another channel; a role without join-call', async () => {
        const calls = callbridge(await connect('alice'), cb.base);
        assertStreamError(await failure(calls.createCall('messaging:random', { id: callId, type: 'video' })), 403, 17, 'another channel');
        const guest = await connect('gina', sign({ user_id: 'gina', role: 'guest' }));
        assertStreamError(await failure(callbridge(guest, cb.base).getCallToken(callId)), 403, 17, 'join-call');
      });

      it('404 code 16: an unknown call', async () => {
        const calls = callbridge(await connect('alice'), cb.base);
        assertStreamError(await failure(calls.getCallToken(`nobody-made-this-${major}`)), 404, 16);
        assertStreamError(await failure(calls.endCall(`nobody-made-this-${major}`)), 404, 16, 'EndCall failed');
      });

      it('End Call: 400 code 4 for a bad reason; bad arguments throw before sending', async () => {
        const alice = await connect('alice');
        const calls = callbridge(alice, cb.base);
        const id = `end-bad-${major}`;
        await calls.createCall('messaging:general', { id, type: 'video' });
        assertStreamError(await failure(calls.endCall(id, { reason: 'r'.repeat(256) })), 400, 4, 'longer than 255 characters');
        assertStreamError(await failure(calls.endCall(id, { reason: 42 })), 400, 4, 'reason must be a string');
        await assert.rejects(calls.endCall(''), /callID must be a non-empty string/);
        await assert.rejects(calls.endCall(id, 'done'), /options must be an object/);
        await assert.rejects(calls.endCall(id, null), /options must be an object/);
        // Still active: none of those ended it.
        assertAgoraToken((await calls.getCallToken(id)).token);
      });

      it('413 code 22: a body over 64 KiB', async () => {
        const calls = callbridge(await connect('alice'), cb.base);
        const options = { description: 'x'.repeat(70 * 1024) };
        assertStreamError(await failure(calls.createCall('messaging:general', { id: 'big', type: 'video', options })), 413, 22);
      });

      it('431 code 24: over 100 headers', async () => {
        const headers = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`x-extra-${i}`, 'y']));
        const server = new StreamChat(KEY, SECRET, { axiosRequestConfig: { headers } });
        assertStreamError(await failure(callbridge(server, cb.base).getCallToken(callId, { user_id: 'a' })), 431, 24);
      });
    });

    it('names the URL when Callbridge cannot be reached', async () => {
      const alice = await connect('alice');
      const base = `http://127.0.0.1:${await closedPort()}`;
      const err = await failure(callbridge(alice, base).getCallToken(callId));
      assert.equal(err.name, 'CallbridgeUnreachableError');
      assert.ok(err.message.includes(`${base}/calls/standup-${major}`) || err.message.includes(`${base}/calls/Standup-${major}`), err.message);
      assert.match(err.message, /ECONNREFUSED/);
      assert.ok(err.cause, 'the SDK error is kept as the cause');
    });

    it('names the URL when the base URL is not Callbridge', async () => {
      const alice = await connect('alice');
      const html = await startPlainServer(404, 'text/html', '<html><body>Not Found</body></html>');
      const ok = await startPlainServer(200, 'text/html', '<html>a web site</html>');
      try {
        let err = await failure(callbridge(alice, html.base).createCall('messaging:general', { id: 'x', type: 'video' }));
        assert.equal(err.StatusCode, 404);
        assert.ok(err.message.includes(`POST ${html.base}/channels/messaging/general/call answered HTTP 404`), err.message);
        assert.ok(err.message.includes(`is ${html.base} the Callbridge API URL?`), err.message);
        err = await failure(callbridge(alice, ok.base).getCallToken('x'));
        assert.ok(err.message.includes(`POST ${ok.base}/calls/x answered body`), err.message);
        assert.ok(err.message.includes('not a Callbridge answer'), err.message);
        // A path Callbridge does not serve (an extra stage or prefix) is its 404, code 16.
        err = await failure(callbridge(alice, `${cb.base}/prod`).getCallToken('x'));
        assertStreamError(err, 404, 16);
      } finally {
        await html.close();
        await ok.close();
      }
      assert.throws(() => callbridge(alice, 'callbridge.example.com'), /is not a URL/);
      assert.throws(() => callbridge(alice, 'http://h/?api_key=k'), /must not carry a query/);
    });

    it('restores channel.createCall and client.getCallToken', async () => {
      const hank = await connect('hank');
      const before = hank.channel('messaging', 'general');
      assert.equal(typeof before.createCall, major === 8 ? 'function' : 'undefined');
      const seen = stream.requests.length;
      restoreCallMethods(hank, cb.base);
      // Code written against 8.x, unchanged:
      const channel = hank.channel('messaging', 'restored');
      const created = await channel.createCall({ id: `restored-${major}`, type: 'video' });
      assert.equal(created.call.id, `restored-${major}`);
      assert.equal(created.agora_uid, agoraUid('hank'));
      const again = await before.createCall({ id: `restored-early-${major}`, type: 'audio' });
      assert.equal(again.call.type, 'audio');
      const token = await hank.getCallToken(`restored-${major}`);
      assert.equal(token.agora_uid, agoraUid('hank'));
      assert.equal(stream.requests.slice(seen).filter((r) => r.method === 'POST').length, 0, 'nothing went to Stream');
      // Another client's channels are not sent to this Callbridge.
      const other = await connect('ivy');
      const otherCall = other.channel('messaging', 'general').createCall({ id: `other-${major}`, type: 'video' });
      if (major === 9) {
        assert.match((await failure(otherCall)).message, /restoreCallMethods/);
      } else {
        await otherCall; // 8.x's own method, to its baseURL (the stand-in for Stream)
        assert.ok(stream.requests.some((r) => r.rawPath === '/channels/messaging/general/call' && r.body.includes(`other-${major}`)));
      }
    });
  });
}

describe('the wire: the kit sends what stream-chat 8.61.0 sent', { timeout: 60000 }, () => {
  let cb;
  let stream;
  before(async () => {
    cb = await startCallbridge();
    stream = await startFakeStream(cb.base);
  });
  after(async () => {
    await stream.close();
    await cb.stop();
  });

  const shape = (r) => ({
    method: r.method,
    rawPath: r.rawPath,
    query: { ...r.query, connection_id: r.query.connection_id ? 'set' : r.query.connection_id },
    authorization: r.headers.authorization,
    authType: r.headers['stream-auth-type'],
    contentType: r.headers['content-type'],
    // The SDK's own user agent (9.x appends its bundle): only its presence is the kit's doing.
    streamClient: r.headers['x-stream-client']?.startsWith('stream-chat-js-v'),
    requestId: typeof r.headers['x-client-request-id'],
    body: r.body,
  });

  async function record(make, act) {
    const client = await make();
    const seen = stream.requests.length;
    await act(client);
    const sent = stream.requests.slice(seen).filter((r) => r.method === 'POST');
    if (client.userID && !client.secret) await client.disconnectUser();
    return sent.map(shape);
  }

  for (const [who, make] of [
    ['a user', (SC) => connectedClient(SC, stream, 'wire-user', sign({ user_id: 'wire-user' }))],
    ['a server-side client', (SC) => new SC(KEY, SECRET, { baseURL: stream.base })],
  ]) {
    it(`for ${who}: Create Call and Get Call Token`, async () => {
      const options = who === 'a user' ? {} : { user_id: 'wire-user' };
      const { StreamChat: SC8 } = streamChat(8);
      const native = await record(() => make(SC8), async (c) => {
        await c.channel('messaging', 'wire').createCall({ id: 'Wire:Call.1', type: 'video', options: {}, ...options });
        await c.getCallToken('Wire:Call.1', options);
      });
      assert.equal(native.length, 2);
      assert.equal(native[0].rawPath, '/channels/messaging/wire/call');
      assert.equal(native[1].rawPath, '/calls/Wire%3ACall.1');
      for (const major of [8, 9]) {
        const { StreamChat } = streamChat(major);
        const kit = await record(() => make(StreamChat), async (c) => {
          const calls = callbridge(c, stream.base);
          await calls.createCall(c.channel('messaging', 'wire'), { id: 'Wire:Call.1', type: 'video', options: {}, ...options });
          await calls.getCallToken('Wire:Call.1', options);
        });
        assert.deepEqual(kit, native, `the kit on stream-chat ${major}.x`);
      }
    });

    it(`for ${who}: End Call, as Get Call Token is sent, to /calls/{id}/end`, async () => {
      const options = who === 'a user' ? {} : { user_id: 'wire-user' };
      const { StreamChat: SC8 } = streamChat(8);
      const [token] = await record(() => make(SC8), (c) => c.getCallToken('Wire:Call.1', options));
      for (const major of [8, 9]) {
        const { StreamChat } = streamChat(major);
        const sent = await record(() => make(StreamChat), async (c) => {
          const calls = callbridge(c, stream.base);
          await calls.createCall(c.channel('messaging', 'wire'), { id: 'Wire:End.1', type: 'video', ...options });
          await calls.endCall('Wire:End.1', options);
          await calls.endCall('Wire:End.1', { ...options, reason: 'done' });
        });
        assert.equal(sent.length, 3);
        const [, plain, withReason] = sent;
        const expected = { ...token, rawPath: '/calls/Wire%3AEnd.1/end' };
        assert.deepEqual(plain, expected, `stream-chat ${major}.x: End Call`);
        assert.deepEqual(withReason, { ...expected, body: JSON.stringify({ ...options, reason: 'done' }) },
          `stream-chat ${major}.x: End Call with a reason`);
        assert.equal(plain.body, JSON.stringify(options));
      }
    });
  }
});
