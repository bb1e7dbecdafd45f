// Test support: the local server binary on a free loopback port, a stand-in for Stream Chat
// (its WebSocket, so that clients connect users as in an app, and a recorder that passes the
// call endpoints on to Callbridge), HS256 tokens, and the pinned stream-chat versions.
import { spawn } from 'node:child_process';
import { createHmac, createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

process.env.NO_PROXY = '127.0.0.1,localhost';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const KEY = 'callbridge-sandbox-key';
export const SECRET = 'callbridge-sandbox-secret-not-for-production';

const modules = process.env.CALLBRIDGE_NODE_MODULES;
if (!modules || !process.env.CALLBRIDGE_LOCAL_BIN) {
  throw new Error('run through scripts/clients_test.sh (CALLBRIDGE_NODE_MODULES, CALLBRIDGE_LOCAL_BIN)');
}
export const NODE_MODULES = modules;
const requireInstalled = createRequire(path.join(modules, 'index.js'));
export const requireKit = createRequire(import.meta.url);

/** stream-chat of the given major version (8: 8.61.0, 9: the pinned 9.x). */
export function streamChat(major) {
  const name = major === 8 ? 'stream-chat-8' : 'stream-chat';
  const mod = requireInstalled(name);
  const version = JSON.parse(fs.readFileSync(path.join(modules, name, 'package.json'), 'utf8')).version;
  if (!version.startsWith(`${major}.`)) throw new Error(`${name} is ${version}, not ${major}.x`);
  return { StreamChat: mod.StreamChat, version };
}

/** The local server binary (sandbox unless `env` configures it), on a free port. */
export async function startCallbridge(env = {}) {
  const child = spawn(process.env.CALLBRIDGE_LOCAL_BIN, [], {
    env: { PATH: process.env.PATH, CALLBRIDGE_PORT: '0', CALLBRIDGE_HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`callbridge-local did not start:\n${log}`)), 15000);
    child.stderr.setEncoding('utf8');
    // Read all of stderr for as long as it runs (its request log would otherwise fill the pipe).
    child.stderr.on('data', (chunk) => {
      log += chunk;
      const m = /listening on (http:\/\/\S+)/.exec(log);
      if (m && log.includes('store:')) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    exited.then((code) => reject(new Error(`callbridge-local exited (${code}):\n${log}`)));
  });
  return {
    base,
    get log() {
      return log;
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * A stand-in for Stream Chat at `base`: `/connect` accepts any client's WebSocket and answers
 * the health check that completes `connectUser`; the call endpoints are recorded and passed on
 * to `upstream` (Callbridge), so Stream's 8.x client can call them "on Stream".
 */
export async function startFakeStream(upstream) {
  const { WebSocketServer } = requireInstalled('ws');
  const requests = [];
  let connections = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url, 'http://x');
      requests.push({ method: req.method, path: url.pathname, rawPath: req.url.split('?')[0], query: Object.fromEntries(url.searchParams), headers: req.headers, body: body.toString('utf8') });
      if (!/^\/(channels\/[^/]+\/[^/]+\/call|calls\/[^/]+(\/end)?)$/.test(url.pathname) || !upstream) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 16, message: 'not served by this stand-in', StatusCode: 404 }));
        return;
      }
      const target = new URL(req.url, upstream);
      const headers = { ...req.headers, host: target.host };
      const out = http.request(target, { method: req.method, headers }, (up) => {
        res.writeHead(up.statusCode, up.headers);
        up.pipe(res);
      });
      out.on('error', (e) => {
        res.writeHead(502);
        res.end(String(e));
      });
      out.end(body);
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname !== '/connect') return socket.destroy();
    wss.handleUpgrade(req, socket, head, (ws) => {
      connections += 1;
      const payload = JSON.parse(url.searchParams.get('json') || '{}');
      const id = payload.user_details?.id ?? payload.user_id;
      ws.send(JSON.stringify({
        type: 'health.check',
        connection_id: `stand-in-connection-${connections}`,
        cid: '*',
        me: { id, role: 'user', mutes: [], channel_mutes: [], devices: [], unread_count: 0, total_unread_count: 0, unread_channels: 0 },
        created_at: new Date().toISOString(),
      }));
      ws.on('message', () => {});
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    requests,
    async close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A plain HTTP server answering every request with `status`, `type` and `body`. */
export async function startPlainServer(status, type, body) {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A loopback port nothing listens on (bound, then closed). */
export async function closedPort() {
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** An HS256 JWT of `claims`, signed with `secret`. */
export function sign(claims, secret = SECRET) {
  const head = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims)}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

export const now = () => Math.floor(Date.now() / 1000);

/** Callbridge's Agora uid of a user (README "Agora uid and channel"). */
export function agoraUid(userId) {
  const n = createHash('sha256').update(userId, 'utf8').digest().readUInt32BE(0) & 0x7fffffff;
  return (n % 2147483647) + 1;
}

/** A StreamChat client of `StreamChat` with `user` connected (through the stand-in's WebSocket). */
export async function connectedClient(StreamChat, stream, userId, tokenOrProvider) {
  const client = new StreamChat(KEY, { baseURL: stream.base, allowServerSideConnect: true });
  await client.connectUser({ id: userId }, tokenOrProvider);
  return client;
}
