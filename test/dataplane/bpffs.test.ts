// The pin directory is the agent's alone: made 0700, and refused when another user owns it or others
// may write to it (whoever can write it can unlink and rename the datapath's pins).
import { chmodSync, chownSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { privileged } from '../helpers/env.js';
import { scope } from '../helpers/scope.js';

import { ensureBpffs } from '../../ts/dataplane/bpffs.js';

privileged('bpffsDir: made 0700; one owned by another user, or group- or world-writable, is refused with the reason', async (t) => {
  const root = await scope(t).bpffs();
  const fresh = join(root, 'fresh');
  await ensureBpffs(fresh);
  t.is(statSync(fresh).mode & 0o777, 0o700);

  const open = join(root, 'open');
  mkdirSync(open);
  chmodSync(open, 0o777);
  await t.throwsAsync(ensureBpffs(open), { message: /open is writable by everyone \(mode 777\).*chmod 700/ });
  chmodSync(open, 0o770);
  await t.throwsAsync(ensureBpffs(open), { message: /writable by its group/ });

  const theirs = join(root, 'theirs');
  mkdirSync(theirs, { mode: 0o700 });
  chownSync(theirs, 65534, 65534);
  await t.throwsAsync(ensureBpffs(theirs), { message: /theirs is owned by uid 65534, not by this agent/ });
});
