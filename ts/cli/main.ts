/** `bpfproxy` — subcommands for operators, the lab and the demo. */
import { Command } from 'commander';

import { native } from '../addon/index.js';
import { registerLabCommands } from './lab.js';
import { runProbeDemo } from './probe-demo.js';

const program = new Command('bpfproxy')
  .description('Kubernetes Services in BPF: a kube-proxy replacement')
  .showHelpAfterError();

program
  .command('version')
  .description('print the versions of bpfproxy, libbpf and the embedded BPF objects')
  .action(() => {
    console.log(`libbpf ${native.libbpfVersion()}`);
    for (const [name, { elf, sha256 }] of Object.entries(native.embeddedObjects())) {
      console.log(`bpf object ${name}: ${elf.length} bytes, sha256 ${sha256.slice(0, 16)}`);
    }
  });

program
  .command('demo')
  .description('build a throw-away lab of network namespaces, show packets crossing XDP and tc, tear it down')
  .action(async () => {
    await runProbeDemo();
  });

registerLabCommands(program);

await program.parseAsync(process.argv);
