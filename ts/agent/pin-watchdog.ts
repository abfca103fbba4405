/**
 * Pins are how the datapath outlives its agent: a restart adopts the pinned maps and links, and
 * traffic never notices. A pin removed under a running agent (a careless `rm`, a cleanup script)
 * costs nothing at once, since the agent's own handles keep the map or link alive, but turns the
 * next restart into an outage: fresh empty maps, programs that fall off the hooks with the last
 * handle. So the agent checks its pins on every sync and every few seconds, pins again what is
 * missing from the handles it holds, and says so. A pin that now names another object is reported,
 * not replaced: someone put it there. Links detached, every one of them, are an uninstall (`bpfproxy
 * cleanup --force` under a running agent), not an accident: nothing is pinned again then.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { mapSpecs, type MapKey } from '../abi/maps.js';
import { native } from '../addon/index.js';
import type { AttachedDatapath } from '../dataplane/attach.js';
import type { Datapath } from '../dataplane/loader.js';

export interface PinCheck {
  /** Pins that were missing and are back (paths). */
  restored: string[];
  /** Pins that could not be restored, or name another object than ours, with the reason. */
  problems: { pin: string; reason: string }[];
  /** Every link we hold is detached: the datapath was uninstalled on purpose; nothing restored. */
  uninstalled?: true;
}

export function checkPins(dp: Datapath, attached: AttachedDatapath): PinCheck {
  const out: PinCheck = { restored: [], problems: [] };
  const links = attached.links();
  if (links.length > 0 && links.every(({ link }) => link.info.ifindex === 0)) return { ...out, uninstalled: true };
  for (const key of Object.keys(mapSpecs) as MapKey[]) {
    const pin = join(dp.pinDir, mapSpecs[key].name);
    const ours = dp.maps[key].raw;
    if (existsSync(pin)) {
      const id = pinnedMapId(pin);
      if (id !== undefined && id !== ours.info.id) out.problems.push({ pin, reason: `names map id ${id}, not ours (${ours.info.id}); left as it is` });
      continue;
    }
    restore(out, pin, () => ours.pin(pin));
  }
  for (const { pin, link } of attached.links()) {
    if (!existsSync(pin)) restore(out, pin, () => link.pin(pin));
  }
  return out;
}

function restore(out: PinCheck, pin: string, pinIt: () => void): void {
  try {
    pinIt();
    out.restored.push(pin);
  } catch (e) {
    out.problems.push({ pin, reason: `cannot pin again: ${(e as Error).message}` });
  }
}

function pinnedMapId(pin: string): number | undefined {
  try {
    const m = native.BpfMap.fromPin(pin);
    const id = m.info.id;
    m.close();
    return id;
  } catch {
    return undefined;
  }
}
