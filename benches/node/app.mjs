// The work of Create Call and Get Call Token as a Node.js team would write it: an HS256 check
// with crypto.createHmac (Stream's rules: HS256 only, exp/nbf/iat with 10 s of leeway), the
// Agora uid from SHA-256 of the user id, the official `agora-token` builder, and the same
// answers (201 with duration, token, agora_uid, agora_app_id and, for Create Call, the call).
// Shared by lambda.mjs and server.mjs; for `make compare` only.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import agoraToken from 'agora-token';

const { RtcTokenBuilder, RtcRole } = agoraToken;
const LEEWAY = 10;

export function config(env = process.env) {
  return {
    apiKey: env.STREAM_API_KEY,
    secret: env.STREAM_API_SECRET,
    appId: env.AGORA_APP_ID,
    certificate: env.AGORA_APP_CERTIFICATE,
    tokenTtl: 3600,
    callTtl: 86400,
  };
}

export class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const unauthenticated = (m) => new HttpError(401, 5, m);

function b64urlJson(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

/** The user id of a valid Stream user token. */
export function verifyJwt(cfg, authorization, authType, now) {
  if (authType !== 'jwt') throw unauthenticated('stream-auth-type must be jwt');
  if (!authorization) throw unauthenticated('missing authorization');
  const token = authorization.startsWith('Bearer ') ? authorization.slice(7) : authorization;
  const parts = token.split('.');
  if (parts.length !== 3) throw unauthenticated('malformed token');
  const header = b64urlJson(parts[0]);
  if (header.alg !== 'HS256') throw unauthenticated('only HS256');
  const expected = createHmac('sha256', cfg.secret).update(`${parts[0]}.${parts[1]}`).digest();
  const given = Buffer.from(parts[2], 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw unauthenticated('signature');
  }
  const claims = b64urlJson(parts[1]);
  if (typeof claims.exp === 'number' && now > claims.exp + LEEWAY) throw unauthenticated('expired');
  if (typeof claims.nbf === 'number' && claims.nbf > now + LEEWAY) throw unauthenticated('nbf');
  if (typeof claims.iat === 'number' && claims.iat > now + LEEWAY) throw unauthenticated('iat');
  if (typeof claims.user_id !== 'string' || claims.user_id === '') throw unauthenticated('user');
  return { userId: claims.user_id, role: claims.role || 'user' };
}

export function agoraUid(userId) {
  const d = createHash('sha256').update(userId, 'utf8').digest();
  return ((d.readUInt32BE(0) & 0x7fffffff) % 0x7fffffff) + 1;
}

function joinToken(cfg, call, actor, now) {
  const uid = agoraUid(actor.userId);
  const token = RtcTokenBuilder.buildTokenWithUid(
    cfg.appId, cfg.certificate, call.channel, uid, RtcRole.PUBLISHER, cfg.tokenTtl, cfg.tokenTtl);
  return { token, agora_uid: uid, agora_app_id: cfg.appId };
}

function duration(started) {
  return `${(Number(process.hrtime.bigint() - started) / 1e6).toFixed(2)}ms`;
}

function checkKey(cfg, apiKey) {
  if (apiKey !== cfg.apiKey) throw new HttpError(401, 2, 'api_key');
}

const ID = /^[a-z0-9_:-]{1,64}$/;

/** Create Call: the stored call of this id (created when absent) and the caller's token.
 * `store.insertIfAbsent(call, now)` gives the stored call (the new one or the live one). */
export async function createCall(cfg, store, req, started) {
  const now = Math.floor(Date.now() / 1000);
  checkKey(cfg, req.apiKey);
  const actor = verifyJwt(cfg, req.authorization, req.authType, now);
  let body;
  try { body = JSON.parse(req.body || '{}'); } catch { throw new HttpError(400, 4, 'json'); }
  if (body === null || typeof body !== 'object') throw new HttpError(400, 4, 'body');
  if (body.type !== 'video' && body.type !== 'audio') throw new HttpError(400, 4, 'type');
  const id = String(body.id).toLowerCase();
  if (!ID.test(id)) throw new HttpError(400, 4, 'id');
  const cid = `${req.channelType}:${req.channelId}`;
  const candidate = {
    id, cid, type: body.type, provider: 'agora', channel: id, created_by: actor.userId,
    created_at: now, expires_at: now + cfg.callTtl,
  };
  const { call, isNew } = await store.insertIfAbsent(candidate, now);
  if (call.cid !== cid) throw new HttpError(403, 17, 'other channel');
  const t = joinToken(cfg, call, actor, now);
  return {
    status: 201, isNew,
    body: JSON.stringify({
      duration: duration(started), ...t,
      call: { id: call.id, provider: 'agora', type: call.type, agora: { channel: call.channel },
        hms: { room_id: '', room_name: '' } },
    }),
  };
}

/** Get Call Token: a token for the live call of this id. */
export async function getCallToken(cfg, store, req, started) {
  const now = Math.floor(Date.now() / 1000);
  checkKey(cfg, req.apiKey);
  const actor = verifyJwt(cfg, req.authorization, req.authType, now);
  const id = decodeURIComponent(req.id).toLowerCase();
  if (!ID.test(id)) throw new HttpError(400, 4, 'id');
  const call = await store.get(id, now);
  if (!call) throw new HttpError(404, 16, 'no such call');
  return { status: 201, body: JSON.stringify({ duration: duration(started), ...joinToken(cfg, call, actor, now) }) };
}

export function errorBody(e, started) {
  return JSON.stringify({ code: e.code ?? -1, message: e.message, StatusCode: e.status ?? 500,
    duration: duration(started), more_info: 'https://getstream.io/chat/docs/api_errors_response',
    details: [] });
}

/** The memory store: a Map of live calls. */
export class MemoryStore {
  constructor() { this.calls = new Map(); }
  async insertIfAbsent(call, now) {
    const existing = this.calls.get(call.id);
    if (existing && existing.expires_at > now) return { call: existing, isNew: false };
    this.calls.set(call.id, call);
    return { call, isNew: true };
  }
  async get(id, now) {
    const c = this.calls.get(id);
    return c && c.expires_at > now ? c : undefined;
  }
}
