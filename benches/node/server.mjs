// The local server a Node team would run on the memory store: node:http, keep-alive, a Map.
// Listens on 127.0.0.1:$CALLBRIDGE_PORT only; stops on SIGTERM or after an hour. make compare.
import http from 'node:http';
import { config, createCall, getCallToken, errorBody, MemoryStore } from './app.mjs';

const cfg = config();
const store = new MemoryStore();
const CREATE = /^\/channels\/([^/]+)\/([^/]+)\/call$/;
const TOKEN = /^\/calls\/([^/]+)$/;

const server = http.createServer({ keepAlive: true }, (req, res) => {
  const started = process.hrtime.bigint();
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const q = req.url.indexOf('?');
    const path = q < 0 ? req.url : req.url.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1));
    const common = {
      apiKey: params.get('api_key'), authorization: req.headers.authorization,
      authType: req.headers['stream-auth-type'], body: Buffer.concat(chunks).toString('utf8'),
    };
    let out;
    try {
      let m;
      if (req.method === 'POST' && (m = CREATE.exec(path))) {
        out = await createCall(cfg, store, { ...common, channelType: m[1], channelId: m[2] }, started);
      } else if (req.method === 'POST' && (m = TOKEN.exec(path))) {
        out = await getCallToken(cfg, store, { ...common, id: m[1] }, started);
      } else {
        out = { status: 404, body: errorBody({ status: 404, code: 16, message: 'route' }, started) };
      }
    } catch (e) {
      out = { status: e.status ?? 500, body: errorBody(e, started) };
    }
    res.writeHead(out.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out.body) });
    res.end(out.body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.CALLBRIDGE_PORT), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
setTimeout(() => process.exit(0), 3_600_000).unref();
