import type { Command } from 'commander';

/** `p5rec data ...`: import, download, stats, audit. */
export function registerDataCommands(program: Command): void {
  program.command('data').description('import, download and inspect datasets');
}
