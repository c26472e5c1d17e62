import type { Command } from 'commander';
import { DATASETS, downloadDataset, type DownloadResult } from '../data/download.js';
import { fmtCount } from '../util/progress.js';
import { logger, runCommand, type CommonFlags } from './output.js';

interface DownloadFlags extends CommonFlags {
  category?: string;
  dir: string;
  mirror?: string;
}

/** `p5rec data download <dataset>`: fetch a public dataset with resume and checksum checks. */
export function registerDownloadCommand(data: Command): void {
  data
    .command('download <dataset>')
    .description(`download a public dataset (${Object.keys(DATASETS).join(', ')}); resumable, verified, progress on stderr`)
    .option('--category <name>', 'amazon-2014 category, e.g. Beauty, Sports_and_Outdoors, Toys_and_Games')
    .requiredOption('--dir <dir>', 'folder to download into (created if missing)')
    .option('--mirror <url>', "fetch files as <url>/<file> instead of from the publisher's address")
    .option('--json', 'print the result as one JSON object on stdout')
    .option('--quiet', 'no progress or log lines on stderr')
    .action(async (dataset: string, flags: DownloadFlags) => {
      await runCommand(
        flags,
        () => downloadDataset(dataset, { dir: flags.dir, category: flags.category, baseUrl: flags.mirror, quiet: flags.quiet, log: logger(flags) }),
        renderHuman,
      );
    });
}

function renderHuman(r: DownloadResult): string {
  const lines = r.files.map((f) => {
    const how = f.skipped ? 'already complete' : f.resumed ? 'downloaded (resumed)' : 'downloaded';
    const unpacked = f.extracted ? `, ${f.extracted.length} files unpacked` : '';
    return `${how}: ${f.path} (${fmtCount(f.bytes)} bytes, sha256 ${f.sha256}${unpacked})`;
  });
  lines.push(`next: ${r.importCommand}`);
  return lines.join('\n');
}
