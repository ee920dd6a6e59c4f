// `olmo-ts demo`: the built-in example run. Until the trainer lands (issue 5) this trains a tiny
// character-level MLP language model with the tensor API and prints its falling loss; it is then
// replaced by a small OLMo trained on the Brown corpus.
import { Command } from 'commander';

const TEXT =
  'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of ' +
  'foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, ' +
  'it was the season of Darkness, it was the spring of hope, it was the winter of despair.';

export function register(program: Command): void {
  program
    .command('demo')
    .description('train a tiny character-level language model on CPU and print the falling loss (placeholder until the OLMo trainer lands)')
    .option('--steps <n>', 'training steps', (v) => parseInt(v, 10), 300)
    .option('--seed <n>', 'random seed', (v) => parseInt(v, 10), 0)
    .action(async (opts: { steps: number; seed: number }) => {
      const t = await import('../index');
      t.manualSeed(opts.seed);
      const chars = [...new Set(TEXT)].sort();
      const V = chars.length, C = 4, E = 16, H = 128;
      const ids = [...TEXT].map((c) => chars.indexOf(c));
      const ctx: number[] = [], next: number[] = [];
      for (let i = C; i < ids.length; i++) { ctx.push(...ids.slice(i - C, i)); next.push(ids[i]!); }
      const X = t.keep(t.tensor(Int32Array.from(ctx), { shape: [next.length, C], dtype: 'int64' }));
      const Y = t.keep(t.tensor(Int32Array.from(next), { dtype: 'int64' }));
      const params = t.tidy(() => [
        t.randn([V, E]).mul(0.5), t.randn([H, C * E]).mul((C * E) ** -0.5), t.zeros([H]),
        t.randn([V, H]).mul(H ** -0.5), t.zeros([V]),
      ]).map((p) => t.keep(p.requiresGrad_()));
      const [emb, w1, b1, w2, b2] = params as [typeof X, typeof X, typeof X, typeof X, typeof X];
      const lr = 0.5;
      const t0 = Date.now();
      for (let step = 1; step <= opts.steps; step++) {
        const loss = t.tidy(() => {
          const logits = t.autocast(() => {
            const h = t.F.embedding(X, emb).reshape(-1, C * E);                 // (N, C*E)
            return t.F.linear(t.F.linear(h, w1, b1).tanh(), w2, b2);          // (N, V)
          });
          const l = t.F.crossEntropy(logits.float(), Y);
          l.backward();
          t.noGrad(() => { for (const p of params) { const g = p.grad!; p.sub_(g, lr); } });
          t.zeroGrad(params);
          return l.item();
        });
        if (step === 1 || step % 50 === 0 || step === opts.steps) console.log(`step ${String(step).padStart(4)}  loss ${loss.toFixed(4)}`);
      }
      console.log(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s (bf16 autocast on CPU); live tensors: ${t.liveTensors()}`);
    });
}
