/** `bpfproxy` — subcommands for operators, the lab and the demo. */
import { Command } from 'commander';

import { native } from '../addon/index.js';
import { registerAgentCommand } from './agent.js';
import { registerCleanupCommand } from './cleanup.js';
import { registerExplainCommand } from './explain.js';
import { registerBenchCommand } from './bench.js';
import { runDemo } from './demo.js';
import { registerLabCommands } from './lab.js';
import { registerServicesCommand } from './services.js';

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
  .description('a throw-away lab with one agent per node, the Services tutorial step by step, each step explained and checked')
  .action(async () => {
    await runDemo();
  });

registerAgentCommand(program);
registerCleanupCommand(program);
registerServicesCommand(program);
registerExplainCommand(program);
registerLabCommands(program);
registerBenchCommand(program);

await program.parseAsync(process.argv);
