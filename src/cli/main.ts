import { Command, CommanderError } from 'commander';
import { registerDataCommands } from './data.js';
import { registerQuickstartCommand } from './quickstart.js';
import { registerModelCommands, registerReportCommand } from './models.js';
import { registerServeCommand } from './serve.js';
import { registerLlmCommands } from './llm.js';
import { registerPromptsCommands } from './prompts.js';
import { registerP5Commands } from './p5.js';
import { VERSION } from '../version.js';

/** Build the command tree; each area registers its own subcommands. */
export function buildProgram(): Command {
  const program = new Command('p5rec')
    .description('Recommendation as language processing: datasets, P5, baselines, LLM recommenders, evaluation, serving')
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride();
  registerDataCommands(program);
  registerModelCommands(program);
  registerReportCommand(program);
  registerServeCommand(program);
  registerLlmCommands(program);
  registerPromptsCommands(program);
  registerP5Commands(program);
  registerQuickstartCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed its message (help, version or a usage error).
      process.exitCode = err.exitCode;
      return;
    }
    throw err;
  }
}
