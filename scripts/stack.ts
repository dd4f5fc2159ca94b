// Command line for the local stack.
//   node scripts/stack.ts up              start it, print how to reach it, stop on Ctrl-C
//   node scripts/stack.ts run -- CMD...   start it, run CMD with the stack's environment, stop it, exit with CMD's code
import { spawn } from 'node:child_process';
import { startStack, type Stack } from '../devstack/stack.ts';

async function main(argv: string[]): Promise<number> {
  const [mode, ...rest] = argv;
  if (mode !== 'up' && mode !== 'run') {
    process.stderr.write('usage: node scripts/stack.ts up | run -- CMD [ARGS...]\n');
    return 2;
  }
  let stack: Stack | undefined;
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await stack?.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(130));
  process.on('SIGTERM', () => void shutdown(143));

  stack = await startStack();
  if (mode === 'up') {
    process.stdout.write(`# the local stack is up; in another shell:\n. ${stack.env.VSYNC_STACK_DIR}/env\n`);
    await new Promise(() => undefined); // until a signal
    return 0;
  }
  const command = rest[0] === '--' ? rest.slice(1) : rest;
  if (command.length === 0) throw new Error('run needs a command after --');
  const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env: { ...process.env, ...stack.env } });
  const code = await new Promise<number>((resolve) => {
    child.on('exit', (c, signal) => resolve(c ?? (signal ? 128 : 1)));
    child.on('error', (e) => {
      process.stderr.write(`cannot run ${command[0]}: ${e.message}\n`);
      resolve(127);
    });
  });
  await shutdown(code);
  return code;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  async (err: unknown) => {
    process.stderr.write(`[devstack] ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
