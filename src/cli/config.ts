// `olmo-ts config`: inspect training configs — `show` prints a config resolved as training would
// see it (overrides merged, interpolations resolved, defaults filled in, validated); `schema`
// writes the JSON Schema editors use to complete and check config files.
import { Command } from 'commander';

const SHOW_HELP = `
Overrides use OLMo's dotted syntax and YAML values:
  --optimizer.learning_rate=1e-3   --max_duration=2e9T   --wandb=null
  --evaluators.0.label=my-eval     --optimizer.betas=[0.9,0.99]   --dry_run  (= true)
Interpolations: \${run_name}, \${a.b}, \${oc.env:VAR,default}, \${path.glob:...},
\${path.choose:A,B} (first existing path or URL), \${path.last_checkpoint:DIR}.

Examples:
  $ olmo-ts config show configs/official/OLMo-7B.yaml --run_name=test --save_folder=/tmp/run
  $ olmo-ts config show configs/tiny-cpu.yaml --json --scheduler.t_warmup=10`;

const SCHEMA_HELP = `
Point your editor at the schema, e.g. for VS Code's YAML extension put this first in a config:
  # yaml-language-server: $schema=../configs/train-config.schema.json

Example:
  $ olmo-ts config schema -o configs/train-config.schema.json`;

/** Adds the `config` command group (show, schema) to the CLI. */
export function register(program: Command): void {
  const config = program.command('config').description('show a resolved training config, or write the config JSON Schema');

  config
    .command('show')
    .description('print a training config as training would use it: overrides applied, ${...} resolved, defaults filled in, validated')
    .argument('<config>', 'YAML config file (OLMo format)')
    .argument('[overrides...]', 'dotted overrides such as --optimizer.learning_rate=1e-3')
    .option('--json', 'print JSON instead of YAML')
    .option('--memory', 'print the memory estimate per device instead (as `olmo-ts plan`)')
    .option('--no-validate-paths', 'let ${path.glob} match nothing and ${path.last_checkpoint} find nothing (OLMo validate_paths=False)')
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText('after', SHOW_HELP)
    .action(async (file: string, words: string[], opts: { json?: boolean; memory?: boolean; validatePaths: boolean }) => {
      const { loadTrainConfig, trainConfigToYaml } = await import('../config');
      const { collectOverrideArgs } = await import('../config/overrides');
      const cfg = loadTrainConfig(file, collectOverrideArgs(words), {
        validatePaths: opts.validatePaths,
        onWarning: (m) => process.stderr.write(`olmo-ts: warning: ${m}\n`),
      });
      if (opts.memory) {
        process.stdout.write(await (await import('./plan')).memoryPlanReport(cfg, file, opts.json ?? false));
        return;
      }
      process.stdout.write(opts.json ? JSON.stringify(cfg, null, 2) + '\n' : trainConfigToYaml(cfg));
    });

  config
    .command('schema')
    .description('write the JSON Schema of training config files (keys, types, defaults, docs)')
    .option('-o, --output <file>', 'write to this file instead of standard output')
    .addHelpText('after', SCHEMA_HELP)
    .action(async (opts: { output?: string }) => {
      const { trainConfigJsonSchemaText } = await import('../config/schema');
      const text = trainConfigJsonSchemaText();
      if (opts.output) {
        const fs = await import('node:fs');
        fs.writeFileSync(opts.output, text);
        process.stderr.write(`wrote ${opts.output}\n`);
      } else process.stdout.write(text);
    });
}
