'use strict';
// Create Call and Get Call Token on a Callbridge server, through a connected stream-chat client;
// and Callbridge's own End Call (POST /calls/{id}/end, no stream-chat counterpart), sent the same
// way as Get Call Token.
//
// What stream-chat 8.x sent, read from its source (npm stream-chat@8.61.0):
//   src/channel.ts  createCall(options) = client.post(this._channelURL() + '/call', options),
//                   _channelURL() = `${baseURL}/channels/${encodeURIComponent(type)}/${encodeURIComponent(id)}`
//   src/client.ts   getCallToken(callID, options = {}) =
//                   this.post(this.baseURL + `/calls/${encodeURIComponent(callID)}`, { ...options })
// The same requests are sent here, through the client's public `post` (stream-chat@9.53.0
// src/client.ts: post(url, data) -> doAxiosRequest; 8.61.0 the same), so that the client's own
// machinery does the rest, exactly as for its chat requests:
//   - doAxiosRequest waits for tokenManager.tokenReady(), and _enrichAxiosOptions adds the query
//     `api_key`, `user_id`, `connection_id` and the headers `Authorization: <JWT>` (no Bearer),
//     `stream-auth-type`, `X-Stream-Client`, `x-client-request-id`;
//   - an error answer with code 40 (token expired) from a client with a token provider makes it
//     call tokenManager.loadToken() and send the request again;
//   - other error answers become the SDK's error (errorFromResponse: 9.x `ErrorFromResponse`,
//     8.x an `Error`), with `code`, `status` and `response`.
// Only the URL differs: Callbridge's instead of the client's baseURL, which stays on Stream.

const BRIDGES = new WeakMap();
const PATCHED = Symbol.for('callbridge-stream-chat.createCall');
const WRAPPED = Symbol.for('callbridge-stream-chat.channel');

/**
 * Create Call, Get Call Token and End Call on the Callbridge at `baseURL`, sent by `client` (a
 * StreamChat with a connected user, or a server-side client).
 */
function callbridge(client, baseURL) {
  if (!client || typeof client.post !== 'function') {
    throw new TypeError('callbridge(client, baseURL): client must be a StreamChat client (stream-chat 8.x or 9.x)');
  }
  const base = normalizeBaseURL(baseURL);
  return Object.freeze({
    baseURL: base,
    async createCall(channelOrCid, options) {
      const { type, id } = channelOf(channelOrCid);
      if (!options || typeof options !== 'object') {
        throw new TypeError('createCall(channel, options): options must be an object like {id, type: "video"}');
      }
      const url = `${base}/channels/${encodeURIComponent(type)}/${encodeURIComponent(id)}/call`;
      return send(client, base, url, options, isCreateCallResponse);
    },
    async getCallToken(callID, options = {}) {
      if (typeof callID !== 'string' || callID === '') {
        throw new TypeError('getCallToken(callID): callID must be a non-empty string');
      }
      const url = `${base}/calls/${encodeURIComponent(callID)}`;
      return send(client, base, url, { ...options }, isTokenResponse);
    },
    // The body is `{}`, or `{reason}` (a string of at most 255 characters), and for a
    // server-side client `user_id`: what End Call reads. Callbridge judges the values.
    async endCall(callID, options = {}) {
      if (typeof callID !== 'string' || callID === '') {
        throw new TypeError('endCall(callID): callID must be a non-empty string');
      }
      if (!options || typeof options !== 'object' || Array.isArray(options)) {
        throw new TypeError('endCall(callID, options): options must be an object like {reason: "..."}');
      }
      const url = `${base}/calls/${encodeURIComponent(callID)}/end`;
      return send(client, base, url, { ...options }, isEndCallResponse);
    },
  });
}

/**
 * For code written against stream-chat 8.x: gives `client` back `client.getCallToken(id, opts)`
 * and its channels `channel.createCall(opts)`, both sent to Callbridge at `baseURL`.
 */
function restoreCallMethods(client, baseURL) {
  const calls = callbridge(client, baseURL);
  BRIDGES.set(client, calls);
  client.getCallToken = (callID, options) => calls.getCallToken(callID, options);
  // Channels come from client.channel() (queryChannels also goes through it); the method is
  // put on their class, and answers for the clients restored here only.
  const active = client.activeChannels || {};
  for (const cid of Object.keys(active)) patchChannelClass(active[cid]);
  if (typeof client.channel === 'function' && !client.channel[WRAPPED]) {
    const original = client.channel;
    const channel = function channel(...args) {
      const made = original.apply(this, args);
      patchChannelClass(made);
      return made;
    };
    channel[WRAPPED] = true;
    client.channel = channel;
  }
  return calls;
}

function patchChannelClass(channel) {
  if (!channel || typeof channel !== 'object') return;
  const proto = Object.getPrototypeOf(channel);
  if (!proto || Object.prototype.hasOwnProperty.call(proto, PATCHED)) return;
  const sdkCreateCall = proto.createCall; // stream-chat 8.x has its own; 9.x none
  Object.defineProperty(proto, 'createCall', {
    configurable: true,
    writable: true,
    value: function createCall(options) {
      const calls = BRIDGES.get(typeof this.getClient === 'function' ? this.getClient() : undefined);
      if (calls) return calls.createCall(this, options);
      if (typeof sdkCreateCall === 'function') return sdkCreateCall.call(this, options);
      return Promise.reject(new Error("channel.createCall: call restoreCallMethods(client, callbridgeURL) for this channel's client first"));
    },
  });
  Object.defineProperty(proto, PATCHED, { value: true });
}

async function send(client, base, url, body, looksRight) {
  if (!client.secret && !client.userID) {
    throw new Error(`Callbridge request ${url}: the client has no user: call client.connectUser() first, or use a server-side client (new StreamChat(key, secret))`);
  }
  let data;
  try {
    data = await client.post(url, body);
  } catch (err) {
    throw explain(err, base, url);
  }
  if (!looksRight(data)) {
    throw new Error(`POST ${url} answered ${describe(data)}, not a Callbridge answer: is ${base} the Callbridge API URL?`);
  }
  return data;
}

// The SDK's own error for Stream-shaped answers (plus `StatusCode`, as Stream's body has it);
// a clear error naming the URL for everything else.
function explain(err, base, url) {
  if (!err || typeof err !== 'object') return err;
  const response = err.response;
  if (response && typeof response === 'object') {
    const data = response.data;
    if (data && typeof data === 'object' && typeof data.code === 'number') {
      if (err.code === undefined || err.code === null) err.code = data.code;
      if (err.StatusCode === undefined) err.StatusCode = typeof data.StatusCode === 'number' ? data.StatusCode : response.status;
      return err;
    }
    err.StatusCode = response.status;
    err.message = `POST ${url} answered HTTP ${response.status} with ${describe(data)}, not a Callbridge error: is ${base} the Callbridge API URL?`;
    return err;
  }
  if (err.isAxiosError && err.name !== 'CanceledError') {
    const reason = err.code ? `${err.code}: ${err.message}` : err.message;
    const wrapped = new Error(`POST ${url} failed, Callbridge at ${base} could not be reached (${reason})`, { cause: err });
    wrapped.name = 'CallbridgeUnreachableError';
    wrapped.url = url;
    return wrapped;
  }
  return err;
}

function describe(data) {
  if (data === undefined || data === null || data === '') return 'an empty body';
  const text = typeof data === 'string' ? data : JSON.stringify(data);
  return `body ${JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text)}`;
}

function isTokenResponse(data) {
  return !!data && typeof data === 'object' && typeof data.token === 'string';
}

function isEndCallResponse(data) {
  return !!data && typeof data === 'object' && typeof data.participants_removed === 'boolean'
    && !!data.call && typeof data.call === 'object' && typeof data.call.id === 'string';
}

function isCreateCallResponse(data) {
  return isTokenResponse(data) && !!data.call && typeof data.call === 'object' && typeof data.call.id === 'string';
}

function channelOf(channelOrCid) {
  if (typeof channelOrCid === 'string') {
    const colon = channelOrCid.indexOf(':');
    if (colon > 0 && colon < channelOrCid.length - 1) {
      return { type: channelOrCid.slice(0, colon), id: channelOrCid.slice(colon + 1) };
    }
  } else if (channelOrCid && typeof channelOrCid.type === 'string' && typeof channelOrCid.id === 'string' && channelOrCid.id) {
    return { type: channelOrCid.type, id: channelOrCid.id };
  }
  throw new TypeError(`createCall: expected a channel with an id (client.channel(type, id)) or a cid "type:id", got ${JSON.stringify(channelOrCid && channelOrCid.cid !== undefined ? channelOrCid.cid : channelOrCid)}`);
}

function normalizeBaseURL(baseURL) {
  let url;
  try {
    url = new URL(baseURL);
  } catch (_) {
    throw new TypeError(`callbridge(client, baseURL): ${JSON.stringify(baseURL)} is not a URL; give the Callbridge API URL, like https://abc123.execute-api.eu-west-1.amazonaws.com`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TypeError(`callbridge(client, baseURL): ${JSON.stringify(baseURL)} is not an http(s) URL`);
  }
  if (url.search || url.hash) {
    throw new TypeError(`callbridge(client, baseURL): ${JSON.stringify(baseURL)} must not carry a query or fragment`);
  }
  return url.href.replace(/\/+$/, '');
}

module.exports = { callbridge, restoreCallMethods };
