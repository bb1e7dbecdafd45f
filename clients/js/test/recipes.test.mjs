// The README's Android, iOS and Flutter recipes (README "Clients"), which cannot be built here:
// each snippet's requests, byte for byte as its HTTP library sends what the snippet writes,
// over a raw socket to the local server (Agora, and 100ms against a stand-in), with the answers
// checked against that platform's old model rules. The snippets' request-making text is
// checked to be in the README, so the two cannot drift apart.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { ROOT, KEY, sign, agoraUid, startCallbridge } from './support.mjs';

const readme = fs.readFileSync(`${ROOT}/README.md`, 'utf8');
const section = readme.slice(readme.indexOf('### Clients'), readme.indexOf('### Logs and traces'));
const block = (lang) => {
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(section);
  assert.ok(m, `README "Clients" has a ${lang} snippet`);
  return m[1];
};

/** One HTTP/1.1 request of exactly these bytes; the parsed answer. */
function raw(base, bytes) {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    // Written, not half-closed (no HTTP client half-closes); `Connection: close` ends it.
    const socket = net.connect(Number(port), hostname, () => socket.write(bytes));
    const chunks = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head, ...rest] = text.split('\r\n\r\n');
      const status = Number(head.split(' ')[1]);
      let body = rest.join('\r\n\r\n');
      if (/transfer-encoding: chunked/i.test(head)) body = dechunk(body);
      resolve({ status, head, json: body ? JSON.parse(body) : undefined });
    });
  });
}

function dechunk(body) {
  let out = '';
  for (let rest = body; ;) {
    const eol = rest.indexOf('\r\n');
    const size = parseInt(rest.slice(0, eol), 16);
    if (!size) return out;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 4 + size);
  }
}

/** A POST as the platform's library writes it: request line, Host, the snippet's headers, body. */
function post(base, target, headers, body) {
  const host = new URL(base).host;
  const lines = [`POST ${target} HTTP/1.1`, `Host: ${host}`, ...headers, 'Connection: close'];
  if (body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${lines.join('\r\n')}\r\n\r\n${body ?? ''}`;
}

const isInt32 = (v) => Number.isInteger(v) && v >= -(2 ** 31) && v <= 2 ** 31 - 1;
const isStr = (v) => typeof v === 'string';

// Android's old models (VideoCallDtos.kt, CreateVideoCallResponse.kt).
function androidCreate(j) {
  for (const k of ['id', 'provider', 'type']) assert.ok(isStr(j.call[k]), `call.${k}`);
  assert.ok(j.call.agora && isStr(j.call.agora.channel), 'call.agora non-null');
  assert.ok(j.call.hms && isStr(j.call.hms.room_id) && isStr(j.call.hms.room_name), 'call.hms non-null');
  assert.ok(isStr(j.token));
  if (j.agora_uid !== undefined) assert.ok(isInt32(j.agora_uid), `agora_uid ${j.agora_uid} is an Int`);
}
function androidToken(j) {
  assert.ok(isStr(j.token));
  if (j.agora_uid !== undefined) assert.ok(isInt32(j.agora_uid), `agora_uid ${j.agora_uid} is an Int`);
}
// Swift's old CallPayload / CallTokenPayload (UInt uid, optional objects).
function swiftCreate(j) {
  assert.ok(isStr(j.call.id) && isStr(j.call.provider) && isStr(j.token));
  if (j.call.agora) assert.ok(isStr(j.call.agora.channel));
  if (j.call.hms) assert.ok(isStr(j.call.hms.room_id) && isStr(j.call.hms.room_name));
  swiftToken(j);
}
function swiftToken(j) {
  assert.ok(isStr(j.token));
  if (j.agora_uid !== undefined) assert.ok(Number.isInteger(j.agora_uid) && j.agora_uid >= 0, 'agora_uid is a UInt');
  if (j.agora_app_id !== undefined) assert.ok(isStr(j.agora_app_id));
}
// Flutter's old CallPayload (call only) and CallTokenPayload.
function flutterCreate(j) {
  assert.ok(isStr(j.call.id) && isStr(j.call.provider));
  if (j.call.hms) assert.ok(isStr(j.call.hms.room_id) && isStr(j.call.hms.room_name), 'hms.room_id / room_name strings');
}
const flutterToken = (j) => assert.ok(isStr(j.token));

const platforms = [
  {
    name: 'Android (Kotlin, OkHttp)',
    lang: 'kotlin',
    // What the snippet writes, as it appears in it.
    source: [
      '.header("Authorization", jwt).header("stream-auth-type", "jwt")',
      'json.toRequestBody("application/json".toMediaType())',
      '"$callbridgeUrl$path?api_key=$apiKey"',
      'URLEncoder.encode(callId, "UTF-8")',
      '"/channels/messaging/$channelId/call", """{"id":"$callId","type":"video"}"""',
      '"/calls/$id", """{"callId":"$callId"}"""',
    ],
    encode: (id) => encodeURIComponent(id), // URLEncoder: ':' as %3A, keeps - . _
    headers: (jwt) => [`Authorization: ${jwt}`, 'stream-auth-type: jwt', 'Content-Type: application/json; charset=utf-8'],
    create: (id) => `{"id":"${id}","type":"video"}`,
    token: (id) => [`{"callId":"${id}"}`],
    checkCreate: androidCreate,
    checkToken: androidToken,
  },
  {
    name: 'iOS (Swift, URLSession)',
    lang: 'swift',
    source: [
      'r.setValue(token.rawValue, forHTTPHeaderField: "Authorization")',
      'r.setValue("jwt", forHTTPHeaderField: "stream-auth-type")',
      'r.setValue("application/json", forHTTPHeaderField: "Content-Type"); r.httpBody = Data(body.utf8)',
      '"\\(callbridgeURL)\\(path)?api_key=\\(apiKey)"',
      'callId.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!',
      '"/channels/messaging/\\(channelId)/call", "{\\"id\\":\\"\\(callId)\\",\\"type\\":\\"video\\"}"',
      'request("/calls/\\(id)", nil)',
    ],
    // .alphanumerics: everything else percent-encoded.
    encode: (id) => id.replace(/[^A-Za-z0-9]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
    headers: (jwt, body) => [`Authorization: ${jwt}`, 'stream-auth-type: jwt', ...(body ? ['Content-Type: application/json'] : [])],
    create: (id) => `{"id":"${id}","type":"video"}`,
    // No body: URLSession may send Content-Length: 0, or nothing.
    token: () => ['', undefined],
    checkCreate: swiftCreate,
    checkToken: swiftToken,
  },
  {
    name: 'Flutter (Dart, package:http)',
    lang: 'dart',
    source: [
      "{'Authorization': token, 'stream-auth-type': 'jwt', 'Content-Type': 'application/json'}",
      "'$callbridgeUrl/channels/messaging/$channelId/call?api_key=$apiKey'), headers: headers, body: '{\"id\":\"$callId\",\"type\":\"video\"}'",
      "'$callbridgeUrl/calls/${Uri.encodeComponent(callId)}?api_key=$apiKey'), headers: headers, body: '{}'",
    ],
    encode: (id) => encodeURIComponent(id),
    // package:http adds the charset of a String body to the content type.
    headers: (jwt) => [`Authorization: ${jwt}`, 'stream-auth-type: jwt', 'content-type: application/json; charset=utf-8'],
    create: (id) => `{"id":"${id}","type":"video"}`,
    token: () => ['{}'],
    checkCreate: flutterCreate,
    checkToken: flutterToken,
  },
];

/** A stand-in for 100ms's room API: every room is created, enabled. */
async function startHmsStandIn() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
      res.writeHead(200, { 'content-type': 'application/json' });
      // 100ms room ids are 24 hex digits.
      const id = createHash('sha256').update(String(body.name)).digest('hex').slice(0, 24);
      res.end(JSON.stringify({ id, name: body.name, enabled: true }));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

describe('platform recipes against the local server', { timeout: 60000 }, () => {
  let agora;
  let hms;
  let hmsApi;
  before(async () => {
    agora = await startCallbridge();
    hmsApi = await startHmsStandIn();
    hms = await startCallbridge({
      STREAM_API_KEY: KEY,
      STREAM_API_SECRET: 'callbridge-sandbox-secret-not-for-production',
      CALLBRIDGE_PROVIDER: 'hms',
      CALLBRIDGE_MEMBERSHIP: 'off',
      HMS_APP_ACCESS_KEY: 'recipes-access-key',
      HMS_APP_SECRET: 'recipes-hms-secret',
      HMS_TEMPLATE_ID: 'tmpl-recipes',
      HMS_DEFAULT_ROLE: 'guest',
      HMS_API_BASE_URL: `${hmsApi.base}/v2`,
    });
  });
  after(async () => {
    await agora.stop();
    await hms.stop();
    await hmsApi.close();
  });

  for (const p of platforms) {
    it(`${p.name}: the README's snippet writes these requests`, () => {
      const code = block(p.lang);
      for (const s of p.source) assert.ok(code.includes(s), `the ${p.lang} snippet contains ${s}`);
    });

    for (const provider of ['agora', 'hms']) {
      it(`${p.name}: Create Call and Get Call Token (${provider})`, async () => {
        const server = provider === 'agora' ? agora : hms;
        const user = `${p.lang}-user`;
        const jwt = sign({ user_id: user });
        const callId = `call-messaging:${p.lang}-${provider}`;
        const create = p.create(callId);
        const created = await raw(server.base, post(server.base, `/channels/messaging/${p.lang}/call?api_key=${KEY}`, p.headers(jwt, create), create));
        assert.equal(created.status, 201, JSON.stringify(created.json));
        p.checkCreate(created.json);
        assert.equal(created.json.call.provider, provider);
        for (const body of p.token(callId)) {
          const target = `/calls/${p.encode(callId)}?api_key=${KEY}`;
          const got = await raw(server.base, post(server.base, target, p.headers(jwt, body), body));
          assert.equal(got.status, 201, `${target} ${JSON.stringify(body)}: ${JSON.stringify(got.json)}`);
          p.checkToken(got.json);
          if (provider === 'agora') assert.equal(got.json.agora_uid, agoraUid(user));
          else assert.equal(got.json.agora_uid, undefined);
        }
      });
    }
  }
});
