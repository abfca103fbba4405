/**
 * The bench runs system tools by name (`nft`, `iptables-*-restore`, `ip`, `taskset`) through
 * `ip netns exec`, which searches PATH. Under `npm run` or `npx`, PATH starts with
 * node_modules/.bin, where a dependency installs an unrelated `nft` (@vercel/nft, the file tracer):
 * `nft -f -` would then run that and fail quietly. Dropping node_modules/.bin entries from PATH
 * for the run keeps every tool the system's.
 */
export function useSystemPath(env: NodeJS.ProcessEnv = process.env): string[] {
  const entries = (env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':');
  const dropped = entries.filter((d) => d.includes('node_modules'));
  env.PATH = entries.filter((d) => !d.includes('node_modules')).join(':');
  return dropped;
}
