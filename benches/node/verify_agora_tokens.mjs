// Agora's official parser (agora-token 2.0.6, pinned in package.json) on tokens Callbridge built:
// each stdin line is {"token", "certificate", "app_id", "issue_ts", "expire", "salt", "channel",
// "account", "privileges": {"1": 600, ...}}. Each token must parse (AccessToken2.from_string:
// Node's zlib inflates it), verify (verifySignature with the certificate, false with another),
// and carry every field as given; prints "N passed, 0 failed" or names the failures and exits 1.
// `make agora-check` (built by shared/examples/agora_tokens.rs).
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';

const require = createRequire(import.meta.url);
const { AccessToken2, ServiceRtc, kRtcServiceType } = require('agora-token/src/AccessToken2');

const failures = [];
let passed = 0;
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const want = JSON.parse(line);
  const t = new AccessToken2();
  const problems = [];
  if (!t.from_string(want.token)) problems.push('from_string refused it');
  if (!t.verifySignature(want.certificate)) problems.push('verifySignature refused it');
  const other = want.certificate.slice(0, -1) + (want.certificate.endsWith('0') ? '1' : '0');
  if (t.verifySignature(other)) problems.push('verifySignature took another certificate');
  for (const f of ['app_id', 'issue_ts', 'expire', 'salt']) {
    const got = { app_id: String(t.appId), issue_ts: t.issueTs, expire: t.expire, salt: t.salt }[f];
    if (got !== want[f]) problems.push(`${f}: ${got} != ${want[f]}`);
  }
  const rtc = t.getServices(kRtcServiceType ?? 1);
  if (rtc.length !== 1 || !(rtc[0] instanceof ServiceRtc)) {
    problems.push(`${rtc.length} RTC services`);
  } else {
    const s = rtc[0];
    if (String(s.__channel_name) !== want.channel) problems.push(`channel ${s.__channel_name}`);
    if (String(s.__uid) !== want.account) problems.push(`account ${s.__uid}`);
    const got = JSON.stringify(Object.fromEntries(Object.entries(s.__privileges).map(([k, v]) => [k, Number(v)])));
    if (got !== JSON.stringify(want.privileges)) problems.push(`privileges ${got}`);
  }
  if (problems.length) failures.push(`${want.token.slice(0, 24)}...: ${problems.join('; ')}`);
  else passed += 1;
}
for (const f of failures.slice(0, 10)) console.error(f);
console.log(`${passed} passed, ${failures.length} failed`);
process.exit(failures.length || passed === 0 ? 1 : 0);
