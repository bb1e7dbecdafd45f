// A Node.js Lambda function doing Callbridge's work, with a minimal Runtime API loop (what the
// managed runtime does, without its extras: the most favourable setting for Node). The handler:
// @aws-sdk/client-dynamodb, conditional PutItem (Create Call) or consistent GetItem (Get Call
// Token), the HS256 check, agora-token; then one JSON log line and one EMF document, as
// Callbridge writes. CALLBRIDGE_OPERATION=create-call|get-call-token. For make compare only.
import http from 'node:http';
import { DynamoDBClient, GetItemCommand, PutItemCommand, ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { config, createCall, getCallToken, errorBody } from './app.mjs';

const cfg = config();
const table = process.env.CALLBRIDGE_TABLE_NAME;
const operation = process.env.CALLBRIDGE_OPERATION;
const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME;
const ddb = new DynamoDBClient({});

const fromItem = (i) => ({
  id: i.pk.S, cid: i.cid.S, type: i.call_type.S, provider: i.provider.S, channel: i.agora_channel.S,
  created_by: i.created_by.S, created_at: Number(i.created_at.N), expires_at: Number(i.expires_at.N),
});

const store = {
  async insertIfAbsent(call, now) {
    try {
      await ddb.send(new PutItemCommand({
        TableName: table,
        Item: {
          pk: { S: call.id }, cid: { S: call.cid }, call_type: { S: call.type }, provider: { S: 'agora' },
          agora_channel: { S: call.channel }, created_by: { S: call.created_by },
          created_at: { N: String(call.created_at) }, expires_at: { N: String(call.expires_at) },
        },
        ConditionExpression: 'attribute_not_exists(pk) OR expires_at <= :now',
        ExpressionAttributeValues: { ':now': { N: String(now) } },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }));
      return { call, isNew: true };
    } catch (e) {
      if (e instanceof ConditionalCheckFailedException && e.Item) return { call: fromItem(e.Item), isNew: false };
      throw e;
    }
  },
  async get(id) {
    const r = await ddb.send(new GetItemCommand({ TableName: table, Key: { pk: { S: id } }, ConsistentRead: true }));
    return r.Item && fromItem(r.Item);
  },
};

async function handler(event, requestId) {
  const started = process.hrtime.bigint();
  const h = event.headers || {};
  const params = new URLSearchParams(event.rawQueryString || '');
  const req = {
    apiKey: params.get('api_key'), authorization: h.authorization, authType: h['stream-auth-type'],
    body: event.isBase64Encoded ? Buffer.from(event.body || '', 'base64').toString('utf8') : event.body,
  };
  let out;
  try {
    out = operation === 'create-call'
      ? await createCall(cfg, store, { ...req, channelType: event.pathParameters.type, channelId: event.pathParameters.id }, started)
      : await getCallToken(cfg, store, { ...req, id: event.pathParameters.id }, started);
  } catch (e) {
    out = { status: e.status ?? 500, code: e.code ?? -1, body: errorBody(e, started) };
  }
  const op = operation === 'create-call' ? 'CreateCall' : 'GetCallToken';
  const apiRequestId = event.requestContext?.requestId;
  process.stdout.write(`${JSON.stringify({
    level: 'INFO', message: 'request', method: 'POST', route: op, status: out.status, code: out.code ?? 0,
    duration_us: Number((process.hrtime.bigint() - started) / 1000n), requestId, apiRequestId,
  })}\n`);
  const status = `${Math.floor(out.status / 100)}xx`;
  const emf = {
    _aws: { Timestamp: Date.now(), CloudWatchMetrics: [{ Namespace: 'Callbridge', Dimensions: [
      ['FunctionName', 'Operation', 'StatusClass'], ['FunctionName', 'Operation', 'Provider']],
    Metrics: [{ Name: 'Requests', Unit: 'Count' }, { Name: 'TokensIssued', Unit: 'Count' }] }] },
    FunctionName: functionName, Operation: op, StatusClass: status, Provider: 'agora',
    Requests: 1, TokensIssued: out.status === 201 ? 1 : 0, requestId, apiRequestId,
  };
  process.stdout.write(`${JSON.stringify(emf)}\n`);
  return { statusCode: out.status, headers: { 'content-type': 'application/json' }, body: out.body, isBase64Encoded: false };
}

const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const base = '/2018-06-01/runtime/invocation';

function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path, agent, headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

for (;;) {
  const next = await call('GET', `${base}/next`);
  const requestId = next.headers['lambda-runtime-aws-request-id'];
  const response = await handler(JSON.parse(next.body), requestId);
  await call('POST', `${base}/${requestId}/response`, JSON.stringify(response));
}
