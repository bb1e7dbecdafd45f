// `make run`'s JavaScript lines, run as printed against the sandbox (the npm install line
// is stood in for by scripts/clients_test.sh: stream-chat and the kit in .tools/node).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, NODE_MODULES, startCallbridge } from './support.mjs';

it("make run's two JavaScript lines create a call on the sandbox", { timeout: 30000 }, async () => {
  const cb = await startCallbridge();
  try {
    const lines = cb.log.split('\n');
    const at = lines.findIndex((l) => l.startsWith('JavaScript ('));
    assert.ok(at > 0, cb.log);
    assert.equal(lines[at + 1], `  npm install stream-chat ${ROOT}/clients/js`);
    const command = lines[at + 2].trim();
    assert.match(command, /^node -e "/);
    const { stdout, stderr } = await promisify(execFile)('sh', ['-c', command], {
      cwd: path.dirname(NODE_MODULES),
      env: { PATH: process.env.PATH, NO_PROXY: '127.0.0.1' },
    });
    assert.equal(stderr, '');
    assert.match(stdout, /id: 'standup'/);
    assert.match(stdout, /provider: 'agora'/);
    assert.match(stdout, /token: '007[A-Za-z0-9+/]+=*'/);
  } finally {
    await cb.stop();
  }
});
