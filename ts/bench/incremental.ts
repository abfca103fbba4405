/**
 * "One change" for the baselines, as kube-proxy itself would send it rather than a full resync:
 *
 *  - iptables (MinimizeIPTablesRestore, default since v1.27): the restore input rewrites every
 *    top-level chain (KUBE-SERVICES, KUBE-NODEPORTS, … — which list all Services, so this part
 *    stays O(N)) plus only the per-service chains whose rules changed, and deletes chains that are
 *    gone (`-X`);
 *  - nftables: one transaction that adds new chains, flushes and rewrites each chain whose rules
 *    changed, deletes chains that are gone, and adds/deletes the set and map elements that differ.
 *
 * Both are computed as the difference between two full texts from ts/baselines, so they follow
 * whatever layout those generate.
 */
interface IptTable {
  name: string;
  decls: Map<string, string>;
  rules: Map<string, string[]>;
}

function parseIptables(text: string): IptTable[] {
  const tables: IptTable[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) tables.push({ name: line.slice(1), decls: new Map(), rules: new Map() });
    const t = tables.at(-1);
    if (!t) continue;
    if (line.startsWith(':')) {
      const chain = line.slice(1).split(' ')[0]!;
      t.decls.set(chain, line);
      if (!t.rules.has(chain)) t.rules.set(chain, []);
    } else if (line.startsWith('-A ')) {
      const chain = line.split(' ')[1]!;
      const rules = t.rules.get(chain) ?? [];
      rules.push(line);
      t.rules.set(chain, rules);
    }
  }
  return tables;
}

/** Per-service chains (everything else kube-proxy rewrites on every sync). */
const PER_SERVICE = /^KUBE-(SVC|SVL|EXT|FW|SEP)-/;

export function iptablesPartialRestore(before: string, after: string): string {
  const old = new Map(parseIptables(before).map((t) => [t.name, t]));
  const out: string[] = [];
  for (const t of parseIptables(after)) {
    const prev = old.get(t.name);
    const changed = (chain: string) => !PER_SERVICE.test(chain) || (prev?.rules.get(chain) ?? []).join('\n') !== (t.rules.get(chain) ?? []).join('\n') || !prev?.decls.has(chain);
    const chains = [...t.decls.keys()].filter(changed);
    const gone = prev ? [...prev.decls.keys()].filter((c) => !t.decls.has(c)) : [];
    out.push(`*${t.name}`);
    for (const c of chains) out.push(t.decls.get(c)!);
    for (const c of gone) out.push(prev!.decls.get(c)!); // flushed before it is deleted
    for (const c of chains) out.push(...(t.rules.get(c) ?? []));
    for (const c of gone) out.push(`-X ${c}`);
    out.push('COMMIT');
  }
  return out.join('\n') + '\n';
}

/** `add rule ip kube-proxy CHAIN …` → CHAIN, and the like. */
function target(line: string, verb: string): string | undefined {
  const parts = line.split(' ');
  return line.startsWith(verb) ? parts[verb.split(' ').length + 2] : undefined;
}

export function nftablesIncremental(before: string, after: string): string {
  const rulesOf = (text: string) => {
    const m = new Map<string, string[]>();
    for (const l of text.split('\n')) {
      const c = target(l, 'add rule');
      if (c !== undefined) m.set(c, [...(m.get(c) ?? []), l]);
    }
    return m;
  };
  const chainsOf = (text: string) => new Map(text.split('\n').flatMap((l) => (target(l, 'add chain') !== undefined ? [[target(l, 'add chain')!, l] as const] : [])));
  const elementsOf = (text: string) => new Set(text.split('\n').filter((l) => l.startsWith('add element ')));
  const [r0, r1] = [rulesOf(before), rulesOf(after)];
  const [c0, c1] = [chainsOf(before), chainsOf(after)];
  const [e0, e1] = [elementsOf(before), elementsOf(after)];
  const table = after.split('\n').find((l) => l.startsWith('add table '))?.split(' ').slice(2, 4).join(' ') ?? 'ip kube-proxy';

  const out: string[] = [];
  for (const [c, line] of c1) if (!c0.has(c)) out.push(line);
  for (const e of e1) if (!e0.has(e)) out.push(e);
  for (const [c] of c1) {
    const a = (r0.get(c) ?? []).join('\n');
    const b = (r1.get(c) ?? []).join('\n');
    if (c0.has(c) && a !== b) out.push(`flush chain ${table} ${c}`, ...(r1.get(c) ?? []));
    else if (!c0.has(c)) out.push(...(r1.get(c) ?? []));
  }
  for (const e of e0) if (!e1.has(e)) out.push(e.replace(/^add element /, 'delete element ').replace(/ : [^}]*}$/, ' }'));
  for (const [c] of c0) if (!c1.has(c)) out.push(`flush chain ${table} ${c}`, `delete chain ${table} ${c}`);
  return out.join('\n') + '\n';
}
